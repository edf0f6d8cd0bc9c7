//! The `steward` binary: parse the command line, load configuration, set up
//! logging, then run the chosen command.

// The command line speaks to its user on stdout and stderr (the server
// itself logs through tracing).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use steward::config::{Config, LogFormat};
use steward::planner::templates::Templates;
use steward::store::{SledStore, StoreError};
use steward::user::UserId;
use steward::{App, app::AppError};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "steward",
    version,
    about = "A chat backend whose assistant keeps long-lived, durable plans",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Configuration file (default: steward.toml if present; a file named
    /// here must exist). STEWARD_* variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Print how a message is interpreted, as one JSON object (the same code
    /// the server runs on every message).
    Interpret {
        /// The moment to resolve relative dates against (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
        /// The user's IANA time zone; default: the configured time_zone.
        #[arg(long)]
        tz: Option<String>,
        /// The message.
        #[arg(required = true, trailing_var_arg = true)]
        text: Vec<String>,
    },
    /// Write a backup of the data directory as JSON lines (stop the server first).
    Export {
        #[arg(long)]
        data: Option<PathBuf>,
        /// Output file (written to a temporary file, synced, then renamed).
        #[arg(long)]
        out: PathBuf,
        /// From a damaged data directory: write every record that can
        /// still be read, and say per family how many could not.
        #[arg(long)]
        salvage: bool,
    },
    /// Restore a backup made by `export` into a new (or empty) data
    /// directory. Every record is checked to decode and none may repeat;
    /// the directory appears only when all of it is good.
    Import {
        #[arg(long)]
        data: Option<PathBuf>,
        file: PathBuf,
    },
    /// Copy the embedded store into an empty PostgreSQL database and verify
    /// the copy: each family's record count and SHA-256 must match. Stop
    /// the server first.
    Migrate {
        /// The data directory to copy (default: data_dir).
        #[arg(long)]
        from: Option<PathBuf>,
        /// postgres://user:password@host:5432/database (default: the
        /// configured STEWARD_DATABASE_URL, which keeps the password out
        /// of the process list).
        #[arg(long)]
        to: Option<String>,
    },
    /// Send the digests that are due now (or, with --user, that user's
    /// digest for the current period) through the configured transport.
    /// Running it twice for the same period sends nothing the second time.
    /// Stop the server first: the embedded store has one owner.
    Digest {
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        user: Option<String>,
        /// The moment to act at (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
    },
    /// Print a signed user token for the configured auth secret.
    Token {
        #[arg(long)]
        user: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl_secs: u64,
    },
}

#[derive(Args, Clone, Default)]
struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free one).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Data directory for the embedded store.
    #[arg(long)]
    data: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_process(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("steward: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    for name in &config.ignored_variables {
        tracing::warn!(variable = %name, "{name} names no setting and is ignored");
    }
    let result = match cli.command {
        Some(Command::Token { user, ttl_secs }) => token(&config, &user, ttl_secs),
        Some(Command::Export { data, out, salvage }) => export(data.unwrap_or(config.data_dir.clone()), &out, salvage),
        Some(Command::Import { data, file }) => import(data.unwrap_or(config.data_dir.clone()), &file),
        Some(Command::Interpret { now, tz, text }) => {
            interpret(&config, now.as_deref(), tz.as_deref(), &text.join(" "))
        }
        Some(Command::Migrate { from, to }) => migrate(&config, from, to),
        Some(Command::Digest { data, user, now }) => digest(config, data, user, now),
        Some(Command::Serve(args)) => serve(config, args),
        None => serve(config, cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("steward: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tokio_cron_scheduler=warn"));
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Auto if !terminal => builder.json().init(),
        LogFormat::Auto | LogFormat::Text => builder.init(),
    }
}

fn token(config: &Config, user: &str, ttl_secs: u64) -> anyhow::Result<()> {
    let secret = config
        .auth_secret
        .as_ref()
        .context("no auth secret is configured (STEWARD_AUTH_SECRET)")?
        .expose_secret();
    let user = UserId::parse(user)?;
    println!("{}", steward::http::auth::issue_token(secret, &user, ttl_secs)?);
    Ok(())
}

fn export(data: PathBuf, out: &std::path::Path, salvage: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let _guard = runtime.enter();
    let partial = out.with_extension("partial");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?,
    );
    let written = if salvage {
        let report = SledStore::salvage(&data, &mut file)?;
        if let Some(kept) = report.shortened_to {
            eprintln!(
                "steward: sled could not open the directory as it is; read again from its log (its first {kept} bytes)"
            );
        }
        if !report.lost.is_empty() {
            let lost: Vec<String> = report.lost.iter().map(|(tree, n)| format!("{tree}: {n}")).collect();
            eprintln!("steward: could not read some records ({})", lost.join(", "));
        }
        if report.written == 0 {
            let _ = std::fs::remove_file(&partial);
            anyhow::bail!("nothing in {} could be read; restore a backup", data.display());
        }
        report.written
    } else {
        let store = SledStore::open(&data).with_context(|| format!("opening {}", data.display()))?;
        store.export(&mut file)?
    };
    let file = file
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", partial.display()))?;
    file.sync_all()?;
    std::fs::rename(&partial, out)?;
    eprintln!("steward: exported {written} records to {}", out.display());
    Ok(())
}

fn import(data: PathBuf, file: &std::path::Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let input =
            std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?);
        let count = SledStore::import_into(&data, input).await?;
        eprintln!("steward: imported {count} records into {}", data.display());
        Ok(())
    })
}

fn migrate(config: &Config, from: Option<PathBuf>, to: Option<String>) -> anyhow::Result<()> {
    let from = from.unwrap_or(config.data_dir.clone());
    let to = match (to, &config.database.url) {
        (Some(url), _) => url,
        (None, Some(url)) => secrecy::ExposeSecret::expose_secret(url).to_owned(),
        (None, None) => anyhow::bail!("say where to: --to postgres://… or STEWARD_DATABASE_URL"),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let source = SledStore::open(&from).with_context(|| format!("opening {}", from.display()))?;
        let options = steward::store::PostgresOptions {
            pool_size: 2,
            ..steward::store::PostgresOptions::from(&config.database)
        };
        let target = steward::store::PostgresStore::connect(&to, &options)
            .await
            .context("connecting to the database")?;
        let digests = steward::store::snapshot::migrate(&source, &target).await?;
        for d in &digests {
            println!("{:<14} {:>8}  {}", d.family, d.count, d.sha256);
        }
        let total: usize = digests.iter().map(|d| d.count).sum();
        eprintln!(
            "steward: copied {total} records from {} to PostgreSQL and verified every family",
            from.display()
        );
        Ok(())
    })
}

fn interpret(config: &Config, now: Option<&str>, tz: Option<&str>, text: &str) -> anyhow::Result<()> {
    let tz: chrono_tz::Tz = match tz {
        Some(name) => name
            .parse()
            .map_err(|_| anyhow::anyhow!("--tz `{name}` is not an IANA time zone"))?,
        None => config.tz(),
    };
    let now = match now {
        Some(at) => chrono::DateTime::parse_from_rfc3339(at)
            .with_context(|| format!("--now `{at}` is not RFC 3339"))?
            .with_timezone(&tz),
        None => chrono::Utc::now().with_timezone(&tz),
    };
    let templates = Templates::load(&config.templates_dir)?;
    println!(
        "{}",
        serde_json::to_string(&steward::interpreter::interpret(text, now, &templates))?
    );
    Ok(())
}

fn digest(mut config: Config, data: Option<PathBuf>, user: Option<String>, now: Option<String>) -> anyhow::Result<()> {
    if let Some(data) = data {
        config.data_dir = data;
    }
    let now = match now {
        Some(at) => chrono::DateTime::parse_from_rfc3339(&at)
            .with_context(|| format!("--now `{at}` is not RFC 3339"))?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    // A future --now would fire digests early and record the real ones as
    // already sent.
    anyhow::ensure!(
        now <= chrono::Utc::now() + chrono::Duration::minutes(1),
        "--now must not be in the future"
    );
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let app = match App::builder(config).clock(Arc::new(move || now)).build().await {
            Ok(app) => app,
            Err(AppError::Store(e @ StoreError::Locked { .. })) => {
                anyhow::bail!("{e}; `steward digest` needs the server stopped (the embedded store has one owner)")
            }
            Err(e) => return Err(e).context("opening steward"),
        };
        let scheduler = app.scheduler();
        let queued = match user {
            Some(name) => {
                let user = UserId::parse(&name)?;
                let prefs = app.store.preferences(&user).await?;
                anyhow::ensure!(
                    prefs.deliverable_email().is_some(),
                    "{user} has no verified email address with email turned on"
                );
                let item = scheduler
                    .digests
                    .decide(&user, &prefs, now, now)
                    .await?
                    .context("could not build the digest")?
                    .item;
                let stored = app.store.enqueue(vec![item]).await?;
                if stored.is_empty() {
                    eprintln!("steward: {user}'s digest for this period was already sent or queued");
                }
                stored.len()
            }
            None => scheduler.tick_digests(now).await?.digests,
        };
        // Deliver what is queued (digests included) until nothing is due.
        let notifier = app.notifier()?;
        let mut sent = 0;
        loop {
            let pass = notifier.pass().await?;
            sent += pass.sent;
            if pass.sent + pass.retried + pass.failed == 0 {
                break;
            }
            if pass.sent == 0 && pass.failed == 0 {
                eprintln!(
                    "steward: {} deliveries will be retried later (temporary failures)",
                    pass.retried
                );
                break;
            }
        }
        eprintln!(
            "steward: {queued} digests queued, {sent} messages sent via {}",
            app.mailer.describe()
        );
        Ok(())
    })
}

fn serve(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(addr) = args.addr {
        config.addr = addr;
    }
    if let Some(data) = args.data {
        config.data_dir = data;
    }
    config.check()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.addr).await.with_context(|| format!("binding {}", config.addr))?;
        let addr = listener.local_addr()?;
        // Links in emails point at the address actually bound (port 0
        // picks one) unless a public URL is configured.
        if config.public_url.is_none() {
            config.public_url = Some(format!("http://{addr}"));
        }
        let app = match App::builder(config.clone()).build().await {
            Ok(app) => app,
            Err(AppError::Store(e @ StoreError::Locked { .. })) => anyhow::bail!("{e}; stop it first or use another --data"),
            Err(e) => return Err(e).context("starting steward"),
        };
        tracing::info!(%addr, engine = %app.engine.name(), data_dir = %config.data_dir.display(), dev_mode = config.dev_mode(), "steward started");
        // The one line a person (or a test harness) reads to find the server.
        println!("steward listening on http://{addr}");
        steward::http::serve(app, listener, shutdown_signal()).await.context("serving")
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
