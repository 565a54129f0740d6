//! Credentials: from the environment, refused with a typed error. Its own test binary, since it
#![allow(unsafe_code)] // std::env::set_var; see the SAFETY note below.
//! sets process environment variables.

use byref_core::{Error, Store, StoreUrl};
use byref_redis::RedisStore;
use byref_testing::Redis;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_come_from_the_environment_and_wrong_ones_are_refused() {
    let redis = Redis::start(&["--requirepass", "s3cret"]);
    let key = byref_core::Key::of(b"x");
    let open = || RedisStore::open(StoreUrl::parse(&redis.url()).unwrap()).unwrap();

    // SAFETY of set_var: this binary runs this one test only, so no other thread reads the
    // environment meanwhile.
    unsafe { std::env::set_var("BYREF_REDIS_PASSWORD", "wrong") };
    let err = open().head(&key).await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err}");
    assert!(!err.to_string().contains("wrong"), "password leaked: {err}");

    unsafe { std::env::remove_var("BYREF_REDIS_PASSWORD") };
    let err = open().head(&key).await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err}");

    unsafe { std::env::set_var("BYREF_REDIS_PASSWORD", "s3cret") };
    assert_eq!(open().head(&key).await.unwrap(), None);
    assert!(
        !format!("{:?}", open()).contains("s3cret"),
        "Debug shows the password"
    );
}
