//! The `[database]` section: where the store lives when it is not the
//! embedded sled store under `data_dir`.

use super::redacted;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A PostgreSQL connection string (`postgres://user:password@host:5432/db`,
    /// `STEWARD_DATABASE_URL`). Set: the store is PostgreSQL. Unset: sled
    /// under `data_dir`.
    #[serde(serialize_with = "redacted")]
    pub url: Option<SecretString>,
    /// Database connections each instance keeps open at most.
    pub pool_size: usize,
    /// Seconds to wait for a database connection.
    pub connect_timeout_secs: u64,
    /// PEM certificates of a private CA that signs the database server's
    /// certificate (`STEWARD_DATABASE_CA_FILE`), trusted besides the public
    /// roots whenever the connection is encrypted.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            pool_size: 16,
            connect_timeout_secs: 10,
            ca_file: None,
        }
    }
}

impl DatabaseConfig {
    /// Refuses settings that cannot work, with the reason.
    pub(super) fn check(&self) -> Result<(), String> {
        if let Some(url) = &self.url {
            let url = url.expose_secret();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(
                    "database.url (STEWARD_DATABASE_URL) must be a PostgreSQL URL: postgres://user:password@host:5432/database"
                        .into(),
                );
            }
        }
        if self.pool_size == 0 || self.connect_timeout_secs == 0 {
            return Err("database.pool_size and database.connect_timeout_secs must be greater than 0".into());
        }
        Ok(())
    }
}
