//! The answer to `LOCATE`.

use crate::{DecodeError, MAX_LOCATION};

/// The answer to `LOCATE`: the server's host, and the file holding the object there (none
/// when the object is not kept in a file). Encoded as `boot id`, `\n`, `hostname`, `\n`,
/// path bytes; the boot id and hostname are free of `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The server's kernel boot id (`/proc/sys/kernel/random/boot_id`): equal ids and
    /// hostnames mean the same running machine.
    pub boot_id: String,
    /// The server's hostname.
    pub hostname: String,
    /// The object's file, when it is in one.
    pub path: Option<std::path::PathBuf>,
}

impl Location {
    /// The answer's bytes.
    pub fn encode(&self) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = format!("{}\n{}\n", self.boot_id, self.hostname).into_bytes();
        if let Some(path) = &self.path {
            out.extend_from_slice(path.as_os_str().as_bytes());
        }
        out
    }

    /// Parses an answer, at most [`MAX_LOCATION`] bytes.
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        use std::os::unix::ffi::OsStrExt;
        if data.len() as u64 > MAX_LOCATION {
            return Err(DecodeError(format!("location of {} bytes", data.len())));
        }
        let mut fields = data.splitn(3, |&b| b == b'\n');
        let mut text = |what: &str| {
            let field = fields
                .next()
                .ok_or_else(|| DecodeError(format!("location without a {what}")))?;
            String::from_utf8(field.to_vec())
                .map_err(|_| DecodeError(format!("location's {what} is not UTF-8")))
        };
        let (boot_id, hostname) = (text("boot id")?, text("hostname")?);
        let path = fields
            .next()
            .ok_or_else(|| DecodeError("location without a path".into()))?;
        Ok(Location {
            boot_id,
            hostname,
            path: (!path.is_empty())
                .then(|| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(path))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_round_trip_and_refuse_what_is_not_one() {
        let here = Location {
            boot_id: "b0".into(),
            hostname: "node1".into(),
            path: Some("/dev/shm/x\ny".into()),
        };
        assert_eq!(Location::decode(&here.encode()).unwrap(), here);
        let nowhere = Location { path: None, ..here };
        assert_eq!(Location::decode(&nowhere.encode()).unwrap(), nowhere);
        assert!(Location::decode(b"only").is_err());
        assert!(Location::decode(b"a\nb").is_err());
        assert!(Location::decode(b"\xff\nb\n/p").is_err());
        assert!(Location::decode(&vec![b'a'; MAX_LOCATION as usize + 1]).is_err());
    }
}
