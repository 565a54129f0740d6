//! Store URLs: `scheme://location?option=value&...`, with unknown or repeated options rejected.

use std::time::Duration;

use url::Url;

use crate::{Error, Result, parse_size};

/// A parsed store URL whose options are taken one by one by the backend that opens it;
/// [`StoreUrl::finish`] then rejects whatever no backend took, so a typo is never ignored.
#[derive(Debug)]
pub struct StoreUrl {
    url: Url,
    /// Every `host:port` of a multi-host URL (`redis+cluster://h1:p1,h2:p2`); else empty.
    hosts: Vec<String>,
    options: Vec<(String, String)>,
}

impl StoreUrl {
    /// Parses `s`, rejecting repeated option names.
    pub fn parse(s: &str) -> Result<Self> {
        let (hosts, parseable) = split_hosts(s);
        let url = Url::parse(&parseable)
            .map_err(|e| Error::Config(format!("{s:?} is not a URL: {e}")))?;
        let mut options: Vec<(String, String)> = Vec::new();
        for (k, v) in url.query_pairs() {
            if options.iter().any(|(seen, _)| *seen == k) {
                return Err(Error::Config(format!(
                    "option {k:?} is given twice in {s:?}"
                )));
            }
            options.push((k.into_owned(), v.into_owned()));
        }
        Ok(StoreUrl {
            url,
            hosts,
            options,
        })
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
    fn multi_host_authorities_list_every_host() {
        let u = StoreUrl::parse("redis+cluster://a:1,b:2,c:3/?prefix=x").unwrap();
        assert_eq!(u.hosts(), ["a:1", "b:2", "c:3"]);
        assert_eq!(u.url().host_str(), Some("a"));
        assert!(StoreUrl::parse("redis://a:1/0").unwrap().hosts().is_empty());
    }
}
