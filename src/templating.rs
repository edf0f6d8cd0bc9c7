//! minijinja environments from a directory of template files, each file
//! falling back to its built-in copy where the directory does not have it
//! (a deployment overrides what it wants, file by file). Strict: a
//! variable a template uses but is not given is an error, not a blank.

use minijinja::{Environment, UndefinedBehavior};
use std::path::Path;

/// A template file that could not be read or parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileError {
    /// The path read, or `built-in <name>`.
    pub file: String,
    pub reason: String,
}

/// Loads `files` (name, built-in source) from `dir`.
pub(crate) fn load(dir: &Path, files: &[(&'static str, &'static str)]) -> Result<Environment<'static>, FileError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for &(name, built_in) in files {
        let path = dir.join(name);
        let (file, source) = match std::fs::read_to_string(&path) {
            Ok(text) => (path.display().to_string(), text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (format!("built-in {name}"), built_in.to_owned()),
            Err(e) => {
                return Err(FileError {
                    file: path.display().to_string(),
                    reason: e.to_string(),
                });
            }
        };
        env.add_template_owned(name, source).map_err(|e| FileError {
            file,
            reason: e.to_string(),
        })?;
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_in_the_directory_replaces_its_built_in_copy_and_a_broken_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let files = [("a.j2", "built-in a"), ("b.j2", "built-in b")];
        std::fs::write(dir.path().join("a.j2"), "local a").unwrap();
        let env = load(dir.path(), &files).unwrap();
        assert_eq!(env.get_template("a.j2").unwrap().render(()).unwrap(), "local a");
        assert_eq!(env.get_template("b.j2").unwrap().render(()).unwrap(), "built-in b");
        std::fs::write(dir.path().join("b.j2"), "{{ broken").unwrap();
        let err = load(dir.path(), &files).unwrap_err();
        assert_eq!(err.file, dir.path().join("b.j2").display().to_string());
        let err = load(dir.path(), &[("c.j2", "{% if %}")]).unwrap_err();
        assert_eq!(err.file, "built-in c.j2");
        // A file that exists but cannot be read is not replaced by the built-in copy.
        std::fs::create_dir(dir.path().join("d.j2")).unwrap();
        let err = load(dir.path(), &[("d.j2", "built-in d")]).unwrap_err();
        assert_eq!(err.file, dir.path().join("d.j2").display().to_string());
    }
}
