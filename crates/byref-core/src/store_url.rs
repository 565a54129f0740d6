//! Store URLs: `scheme://location?option=value&...`, with unknown or repeated options rejected.

use std::time::Duration;

use url::Url;

use crate::{Error, Result, parse_size};

/// A parsed store URL whose options are taken one by one by the backend that opens it;
/// [`StoreUrl::finish`] then rejects whatever no backend took, so a typo is never ignored.
#[derive(Debug)]
pub struct StoreUrl {
    /// The URL as parsed: scheme, host, path for the backend to read.
    url: Url,
    /// Every `host:port` of a multi-host URL (`redis+cluster://h1:p1,h2:p2`); else empty.
    hosts: Vec<String>,
    /// Options not yet taken: whatever is left at `finish` is a typo to report.
    options: Vec<(String, String)>,
    /// Whether a handle named this URL (rather than the user): global secrets are then sent
    /// only to the host the user configured ([`crate::secrets::for_host`]).
    named_by_handle: bool,
}

impl StoreUrl {
    /// Parses `s`, rejecting repeated option names.
    pub fn parse(s: &str) -> Result<Self> {
        let (hosts, parseable) = split_hosts(s);
        let url = Url::parse(&parseable)
            .map_err(|e| Error::Config(format!("{:?} is not a URL: {e}", redact(s))))?;
        let mut options: Vec<(String, String)> = Vec::new();
        for (k, v) in url.query_pairs() {
            if options.iter().any(|(seen, _)| *seen == k) {
                return Err(Error::Config(format!(
                    "option {k:?} is given twice in {:?}",
                    redact(s)
                )));
            }
            options.push((k.into_owned(), v.into_owned()));
        }
        Ok(StoreUrl {
            url,
            hosts,
            options,
            named_by_handle: false,
        })
    }

    /// The `file://` URL of directory `dir`, relative to the working directory unless
    /// absolute (`byref serve --dir work/daemon`), with any character a path may hold
    /// escaped.
    pub fn of_directory(dir: &std::path::Path) -> Result<Self> {
        let absolute = std::path::absolute(dir)
            .map_err(|e| Error::Config(format!("directory {}: {e}", dir.display())))?;
        let url = Url::from_file_path(&absolute)
            .map_err(|()| Error::Config(format!("{} is not a local path", absolute.display())))?;
        Ok(StoreUrl {
            url,
            hosts: Vec::new(),
            options: Vec::new(),
            named_by_handle: false,
        })
    }

    /// Marks the URL as named by a handle, which may come from anyone.
    pub fn named_by_handle(mut self) -> Self {
        self.named_by_handle = true;
        self
    }

    /// Whether a handle named this URL.
    pub fn is_named_by_handle(&self) -> bool {
        self.named_by_handle
    }

    /// The hosts of a comma-separated multi-host authority, each `host:port`; empty for an
    /// ordinary URL (use [`StoreUrl::url`]'s host).
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The scheme, e.g. `file`.
    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// The URL itself, options included.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Removes and returns option `name`.
    pub fn take(&mut self, name: &str) -> Option<String> {
        let at = self.options.iter().position(|(k, _)| k == name)?;
        Some(self.options.remove(at).1)
    }

    /// Removes option `name` and reads it as a boolean (`true/false/1/0/yes/no`).
    pub fn take_bool(&mut self, name: &str, default: bool) -> Result<bool> {
        match self.take(name).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(Error::Config(format!(
                "option {name} must be true or false, not {other:?}"
            ))),
        }
    }

    /// Removes option `name` and reads it as a positive number of seconds (`5`, `0.5`, `5s`).
    pub fn take_secs(&mut self, name: &str) -> Result<Option<Duration>> {
        let Some(text) = self.take(name) else {
            return Ok(None);
        };
        text.trim_end_matches('s')
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .map(Some)
            .ok_or_else(|| {
                Error::Config(format!(
                    "option {name} must be a positive number of seconds, not {text:?}"
                ))
            })
    }

    /// Removes option `name` and reads it as a size (`8GiB`, `512MB`, `1000`).
    pub fn take_size(&mut self, name: &str) -> Result<Option<u64>> {
        self.take(name)
            .map(|text| parse_size(&text).map_err(|e| Error::Config(format!("option {name}: {e}"))))
            .transpose()
    }

    /// Removes option `name` and parses it as a `T` (a number, say).
    pub fn take_parsed<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>> {
        self.take(name)
            .map(|text| {
                text.parse()
                    .map_err(|_| Error::Config(format!("option {name} cannot be {text:?}")))
            })
            .transpose()
    }

    /// Refuses a URL that carries a user name or password: secrets never travel in a store
    /// URL (it goes into every handle). `instead` tells the user where they go. The message
    /// never repeats the URL, which holds the secret.
    pub fn refuse_credentials(&self, instead: &str) -> Result<()> {
        if self.url.password().is_some() || !self.url.username().is_empty() {
            return Err(Error::Config(format!(
                "credentials never go in a {}:// store URL: {instead}",
                self.url.scheme()
            )));
        }
        Ok(())
    }

    /// The URL as messages may show it: with whatever precedes an `@` (a password) hidden.
    pub fn redacted(&self) -> String {
        redact(self.url.as_str())
    }

    /// Fails if any option was not taken.
    pub fn finish(self) -> Result<()> {
        if self.options.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        Err(Error::Config(format!(
            "unknown option(s) {} for a {}:// store",
            names.join(", "),
            self.url.scheme()
        )))
    }
}

/// Builds the canonical URL of a store, the one its handles carry: scheme, location, then
/// options in the order given, each as the matching [`StoreUrl`] taker reads it back.
#[derive(Debug)]
pub struct UrlBuilder {
    /// The URL so far.
    url: String,
    /// Whether `?` has been written.
    has_query: bool,
}

impl UrlBuilder {
    /// `scheme://location`.
    pub fn new(scheme: &str, location: &str) -> Self {
        UrlBuilder {
            url: format!("{scheme}://{location}"),
            has_query: false,
        }
    }

    /// Continues a canonical URL that another builder made.
    pub fn extend(url: &str) -> Self {
        UrlBuilder {
            url: url.to_owned(),
            has_query: url.contains('?'),
        }
    }

    /// Adds `name=value`, escaping what would end the value early (`&`, `#`, `+`, `%`, space).
    pub fn option(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.url.push(if self.has_query { '&' } else { '?' });
        self.has_query = true;
        self.url.push_str(name);
        self.url.push('=');
        for c in value.to_string().chars() {
            match c {
                '&' | '#' | '+' | '%' | ' ' => self.url.push_str(&format!("%{:02X}", c as u32)),
                c => self.url.push(c),
            }
        }
        self
    }

    /// Adds `name=value` if there is a value.
    pub fn option_if(self, name: &str, value: Option<impl std::fmt::Display>) -> Self {
        match value {
            Some(value) => self.option(name, value),
            None => self,
        }
    }

    /// Adds `name=SECONDS` if there is a duration.
    pub fn secs(self, name: &str, value: Option<Duration>) -> Self {
        self.option_if(name, value.map(|d| d.as_secs_f64()))
    }

    /// The URL.
    pub fn build(self) -> String {
        self.url
    }
}

/// `s` with whatever precedes an `@` in its authority (a user name, a password) replaced by
/// `***`: what error messages show of a URL that did not parse.
pub fn redact(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => s.to_owned(),
    }
}

/// Splits a comma-separated authority (which `url` cannot parse) out of `s`, leaving a URL
/// with the first host in its place.
fn split_hosts(s: &str) -> (Vec<String>, String) {
    let Some((scheme, rest)) = s.split_once("://") else {
        return (Vec::new(), s.to_owned());
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if !authority.contains(',') {
        return (Vec::new(), s.to_owned());
    }
    let hosts: Vec<String> = authority.split(',').map(|h| h.trim().to_owned()).collect();
    (
        hosts.clone(),
        format!("{scheme}://{}{}", hosts[0], &rest[end..]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_taken_once_and_leftovers_rejected() {
        let mut u = StoreUrl::parse("file:///tmp/x?verify=false&fsync=1").unwrap();
        assert!(!u.take_bool("verify", true).unwrap());
        assert!(u.take_bool("fsync", false).unwrap());
        u.finish().unwrap();

        let u = StoreUrl::parse("file:///tmp/x?verfiy=false").unwrap();
        let err = u.finish().unwrap_err().to_string();
        assert!(err.contains("verfiy"), "{err}");

        assert!(StoreUrl::parse("file:///x?a=1&a=2").is_err());
        for twice in ["prefix=a&prefix=b", "region=a&region=b"] {
            let err = StoreUrl::parse(&format!("redis://alice:s3cret@h:1/0?{twice}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("twice") && !err.contains("s3cret"), "{err}");
        }
        assert!(StoreUrl::parse("not a url").is_err());
        let mut u = StoreUrl::parse("file:///x?verify=maybe").unwrap();
        assert!(u.take_bool("verify", true).is_err());
    }

    #[test]
    fn seconds_and_sizes_have_one_rule_each() {
        let mut u = StoreUrl::parse("x://h?a=5&b=0.5s&c=0&d=-1&e=soon&f=2GiB&g=lots").unwrap();
        assert_eq!(u.take_secs("a").unwrap(), Some(Duration::from_secs(5)));
        assert_eq!(u.take_secs("b").unwrap(), Some(Duration::from_millis(500)));
        for bad in ["c", "d", "e"] {
            assert!(u.take_secs(bad).is_err(), "{bad}");
        }
        assert_eq!(u.take_secs("absent").unwrap(), None);
        assert_eq!(u.take_size("f").unwrap(), Some(2 << 30));
        assert!(u.take_size("g").is_err());
        u.finish().unwrap();
    }

    #[test]
    fn built_urls_read_back_the_same_options() {
        let url = UrlBuilder::new("x", "h:1/p")
            .option("a", "v&w=#1 %")
            .option_if("b", None::<u8>)
            .secs("t", Some(Duration::from_millis(1500)))
            .build();
        assert_eq!(url, "x://h:1/p?a=v%26w=%231%20%25&t=1.5");
        let mut parsed = StoreUrl::parse(&url).unwrap();
        assert_eq!(parsed.take("a").as_deref(), Some("v&w=#1 %"));
        assert_eq!(
            parsed.take_secs("t").unwrap(),
            Some(Duration::from_millis(1500))
        );
        parsed.finish().unwrap();
    }

    #[test]
    fn urls_that_do_not_parse_are_shown_without_their_credentials() {
        for url in ["redis://u:hunter2@[bad", "file://u:hunter2@localhost/tmp/x"] {
            let e = StoreUrl::parse(url).expect_err(url).to_string();
            assert!(!e.contains("hunter2") && e.contains("***@"), "{e}");
        }
        assert_eq!(redact("x://u:p@h:1/a@b"), "x://***@h:1/a@b");
        assert_eq!(redact("x://h/p"), "x://h/p");
    }

    #[test]
    fn credentials_are_refused_without_echoing_them() {
        for url in ["x://user:hunter2@h/", "x://:hunter2@h/", "x://user@h/"] {
            let err = StoreUrl::parse(url)
                .unwrap()
                .refuse_credentials("use X")
                .unwrap_err();
            assert!(
                !err.to_string().contains("hunter2") && !err.to_string().contains("user"),
                "{err}"
            );
        }
        StoreUrl::parse("x://h/")
            .unwrap()
            .refuse_credentials("")
            .unwrap();
    }

    #[test]
    fn multi_host_authorities_list_every_host() {
        let u = StoreUrl::parse("redis+cluster://a:1,b:2,c:3/?prefix=x").unwrap();
        assert_eq!(u.hosts(), ["a:1", "b:2", "c:3"]);
        assert_eq!(u.url().host_str(), Some("a"));
        assert!(StoreUrl::parse("redis://a:1/0").unwrap().hosts().is_empty());
    }
}
