//! Server-side scripts: reference counting must be atomic across every client.
//!
//! An object's keys share one hash tag (`prefix{hex}`), so they live in one cluster slot and a
//! script may touch all of them, chunks included.

use std::sync::LazyLock;

use redis::Script;

/// Adds reference ARGV[1] to the object and sets its expiry; returns 1 if the object exists.
///
/// KEYS[1] the object (data or manifest), KEYS[2] its reference set. ARGV[2] the TTL in ms
/// (0 = none). An existing object's TTL only grows (`PEXPIRE ... GT`), and a put without TTL
/// makes it persistent: no reference loses its object to another's shorter TTL.
pub(crate) static ADD_REFERENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call("SADD", KEYS[2], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call("EXISTS", KEYS[1]) == 0 then
  if ttl > 0 then redis.call("PEXPIRE", KEYS[2], ttl) else redis.call("PERSIST", KEYS[2]) end
  return 0
end
local keys = {KEYS[1]}
local n = string.match(redis.call("GETRANGE", KEYS[1], 0, 63), "^BRMF1 len=%d+ chunk=%d+ count=(%d+)")
if n then for i = 0, tonumber(n) - 1 do table.insert(keys, KEYS[1] .. ":c:" .. i) end end
for _, k in ipairs(keys) do
  if ttl > 0 then redis.call("PEXPIRE", k, ttl, "GT") else redis.call("PERSIST", k) end
end
local left = redis.call("PTTL", KEYS[1])
if left > 0 then redis.call("PEXPIRE", KEYS[2], left) else redis.call("PERSIST", KEYS[2]) end
return 1
"#,
    )
});

/// Drops reference ARGV[1] (any one if empty) and deletes the object with its chunks when it
/// was the last. Returns 1 deleted, 0 others remain, -1 that reference was already gone,
/// -2 the object has no references at all.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local removed
if ARGV[1] == "" then
  removed = redis.call("SPOP", KEYS[2]) and 1 or 0
else
  removed = redis.call("SREM", KEYS[2], ARGV[1])
end
if removed == 0 then
  if redis.call("SCARD", KEYS[2]) > 0 then return -1 end
  return -2
end
if redis.call("SCARD", KEYS[2]) > 0 then return 0 end
local n = string.match(redis.call("GETRANGE", KEYS[1], 0, 63), "^BRMF1 len=%d+ chunk=%d+ count=(%d+)")
if n then for i = 0, tonumber(n) - 1 do redis.call("DEL", KEYS[1] .. ":c:" .. i) end end
redis.call("DEL", KEYS[1])
return 1
"#,
    )
});
