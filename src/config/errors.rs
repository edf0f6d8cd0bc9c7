//! Configuration errors in the words of the settings: the setting's name
//! (as in steward.toml, and as its `STEWARD_*` variable), what was given
//! and the form expected, never a Rust type.

use figment::error::Kind;

/// Every error figment found, one per line.
pub(super) fn describe(error: figment::Error) -> String {
    error.into_iter().map(|e| one(&e)).collect::<Vec<_>>().join("; ")
}

fn one(e: &figment::Error) -> String {
    let setting = e.path.join(".");
    let named = match setting.as_str() {
        "" => "the configuration".to_owned(),
        s => format!("`{s}` ({})", variable(s)),
    };
    match &e.kind {
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("{named}: got {actual}; expected {}", form(expected))
        }
        Kind::InvalidLength(n, expected) => format!("{named}: got {n} items; expected {}", form(expected)),
        Kind::UnknownVariant(given, known) => {
            format!("{named}: `{given}` is not one of {}", known.join(", "))
        }
        Kind::UnknownField(field, known) => {
            // The path names the unknown field already.
            let full = if setting.is_empty() {
                field.clone()
            } else {
                setting.clone()
            };
            format!("unknown setting `{full}`; the settings here are {}", known.join(", "))
        }
        Kind::MissingField(field) => format!("{named}: `{field}` is missing"),
        Kind::DuplicateField(field) => format!("{named}: `{field}` is given twice"),
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => format!("{named}: the number is too large"),
        Kind::Message(message) => format!("{named}: {message}"),
        Kind::Unsupported(actual) | Kind::UnsupportedKey(actual, _) => {
            format!("{named}: {actual} cannot be used here")
        }
    }
}

/// The variable that sets `setting`: `limits.turn_queue` →
/// `STEWARD_LIMITS_TURN_QUEUE`.
fn variable(setting: &str) -> String {
    format!("STEWARD_{}", setting.replace('.', "_").to_ascii_uppercase())
}

/// What serde expected, said as the form a person writes.
fn form(expected: &str) -> String {
    let unsigned = ["usize", "u64", "u32", "u16", "u8"];
    let signed = ["isize", "i64", "i32", "i16", "i8"];
    if unsigned.iter().any(|t| expected.contains(t)) {
        "a whole number, 0 or more".into()
    } else if signed.iter().any(|t| expected.contains(t)) {
        "a whole number".into()
    } else if expected.contains("f32") || expected.contains("f64") {
        "a number".into()
    } else if expected.contains("bool") {
        "true or false".into()
    } else if expected.contains("sequence") {
        "a list".into()
    } else if expected.contains("struct") || expected.contains("map") {
        "a table of settings".into()
    } else if expected.contains("string") || expected.contains("char") {
        "text".into()
    } else {
        expected.replace('`', "")
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn from_file(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("steward.toml");
        std::fs::write(&file, text).unwrap();
        Config::load(&file, Vec::new()).unwrap_err().to_string()
    }

    fn from_variable(name: &str, value: &str) -> String {
        Config::load(std::path::Path::new("/none"), vec![(name.to_owned(), value.to_owned())])
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_setting_its_variable_and_the_form_expected_never_a_rust_type() {
        let cases = [
            (
                from_variable("STEWARD_LIMITS_TURN_QUEUE", "many"),
                "`limits.turn_queue` (STEWARD_LIMITS_TURN_QUEUE): got string \"many\"; expected a whole number, 0 or more",
            ),
            (
                from_file("[limits]\nturn_queue = -1\n"),
                "`limits.turn_queue` (STEWARD_LIMITS_TURN_QUEUE): got signed int `-1`; expected a whole number, 0 or more",
            ),
            (from_file("background = \"yes\"\n"), "expected true or false"),
            (from_file("log_format = \"fancy\"\n"), "`fancy` is not one of"),
            (
                from_file("[limits]\nturns = 3\n"),
                "unknown setting `limits.turns`; the settings here are",
            ),
            (
                from_file("webhooks = 3\n"),
                "`webhooks` (STEWARD_WEBHOOKS): got signed int `3`; expected a list",
            ),
        ];
        for (got, want) in cases {
            assert!(got.contains(want), "{got}\nwants: {want}");
            for rust in ["usize", "u64", "u32", "i64", "struct ", "sequence", "bool"] {
                assert!(!got.contains(rust), "{got} names a Rust type ({rust})");
            }
        }
    }
}
