//! `allowed_origins`: browser origins allowed to open `/ws` and call the
//! API cross-origin. Written as one URL or a comma-separated list (how an
//! environment variable spells it); each is normalised to
//! `scheme://host[:port]` (lowercase, no trailing slash, no default port),
//! and `*` is refused: a chat that acts on someone's plans must name the
//! sites that embed it.

use serde::{Deserialize, Deserializer};

/// The origin as a browser sends it in `Origin`, or why it is not one.
pub(crate) fn normalize(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text == "*" {
        return Err(
            "allowed_origins: `*` would let any website act for a signed-in user; list the sites that embed the widget (https://intranet.example.com)"
                .into(),
        );
    }
    let url = url::Url::parse(text).map_err(|e| {
        format!("allowed_origins: `{text}` is not an origin ({e}); write it as https://host or https://host:port")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "allowed_origins: `{text}` is not an origin; write it as https://host or https://host:port"
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "allowed_origins: `{text}` has a path or more; an origin is only scheme, host and port (https://host:port)"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// A list, or one string holding a comma-separated list; each normalised.
pub(super) fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    items(d)?
        .iter()
        .map(|o| normalize(o).map_err(serde::de::Error::custom))
        .collect()
}

/// The items of a setting written as a list or as one comma-separated
/// string (the form a `STEWARD_*` variable takes), trimmed, empty ones
/// dropped.
pub(super) fn items<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(String),
        Many(Vec<String>),
    }
    let items: Vec<String> = match Form::deserialize(d)? {
        Form::One(s) => s.split(',').map(str::to_owned).collect(),
        Form::Many(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_stars_and_paths_refused() {
        assert_eq!(
            normalize("HTTPS://Intranet.Example.com/").unwrap(),
            "https://intranet.example.com"
        );
        assert_eq!(normalize(" https://a.example:443 ").unwrap(), "https://a.example");
        assert_eq!(normalize("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert!(normalize("*").unwrap_err().contains("any website"));
        assert!(normalize("https://a.example/app").unwrap_err().contains("has a path"));
        assert!(normalize("intranet.example").is_err());
        assert!(normalize("ftp://a.example").is_err());
    }

    #[test]
    fn the_variable_takes_one_origin_or_a_list_and_a_star_stops_the_start_with_the_reason() {
        let load = |value: &str| {
            crate::config::Config::load(
                std::path::Path::new("/none"),
                vec![("STEWARD_ALLOWED_ORIGINS".to_owned(), value.to_owned())],
            )
        };
        assert_eq!(
            load("https://A.example/").unwrap().allowed_origins,
            ["https://a.example"]
        );
        assert_eq!(
            load("https://a.example, http://b.example:8080")
                .unwrap()
                .allowed_origins,
            ["https://a.example", "http://b.example:8080"]
        );
        let refused = load("*").unwrap_err().to_string();
        assert!(refused.contains("`*` would let any website"), "{refused}");
    }
}
