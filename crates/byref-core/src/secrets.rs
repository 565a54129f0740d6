//! Secrets (passwords, keys, tokens): from the environment or the user's config file, never
//! from a URL or a handle.
//!
//! The config file is `$BYREF_CONFIG_DIR/byref.env` (default `~/.config/byref/byref.env`),
//! `NAME=value` lines in the dotenv style; home directories are usually shared between an HPC
//! cluster's login and compute nodes, so one file serves the submitting side and the workers.
//! A variable set in the environment wins over the file.

use std::path::PathBuf;

/// The directory byref reads its configuration from.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BYREF_CONFIG_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("byref"))
}

/// The value of secret `name`: the environment variable, else the config file's line.
pub fn lookup(name: &str) -> Option<String> {
    if let Ok(value) = std::env::var(name) {
        return Some(value);
    }
    let text = std::fs::read_to_string(config_dir()?.join("byref.env")).ok()?;
    parse_line(&text, name)
}

fn parse_line(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line.split_once('=')?;
        (key.trim() == name).then(|| {
            let value = value.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')));
            unquoted.unwrap_or(value).to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn reads_dotenv_lines() {
        let text = "# comment\nexport A=1\nB = \"two words\"\nC='x=y'\n";
        assert_eq!(parse_line(text, "A").as_deref(), Some("1"));
        assert_eq!(parse_line(text, "B").as_deref(), Some("two words"));
        assert_eq!(parse_line(text, "C").as_deref(), Some("x=y"));
        assert_eq!(parse_line(text, "D"), None);
    }
}
