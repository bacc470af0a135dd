//! `pulse-emit --postgres URL`: snapshots upserted into a PostgreSQL table, one row per
//! stat, key, window and value name.
//!
//! The table is created when missing:
//!
//! ```sql
//! CREATE TABLE pulse_metrics (
//!     stat    text             NOT NULL,
//!     key     text             NOT NULL,  -- '' for a stat without `by`
//!     start   timestamptz      NOT NULL,  -- the window's start
//!     secs    integer          NOT NULL,  -- the window's length
//!     name    text             NOT NULL,  -- count, p95, a top value ...
//!     value   double precision NOT NULL,
//!     final   boolean          NOT NULL,
//!     written timestamptz      NOT NULL,  -- when this row was last changed
//!     PRIMARY KEY (stat, key, start, secs, name)
//! );
//! ```
//!
//! Each batch is one transaction: the rows are copied (`COPY`) into a temporary table, then
//! merged in (an `UPDATE` of the rows there, an `INSERT` of the others), where a row changes only when the new
//! snapshot may replace the stored one (it is final, or the stored one is not) and its value
//! or finality differs. So a corrected window replaces its rows, a re-delivered one changes
//! nothing (not even `written`), a provisional value never overwrites a final one, and a run
//! killed mid-batch leaves nothing of that batch. The value names a replacing snapshot no
//! longer has (a `top` value that fell out of the list) are deleted with it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::str::FromStr;

use postgres::config::Host;
use postgres::{Client, Config, NoTls};

use crate::error::{Error, Result};
use crate::record::Snapshot;
use crate::sink::Sink;

/// The table written when `--pg-table` is not given.
pub const DEFAULT_TABLE: &str = "pulse_metrics";

pub struct Postgres {
    config: Config,
    /// `user@host:port/db`, never the password.
    label: String,
    /// The table, quoted for SQL (`"pulse_metrics"`, `"metrics"."pulse"`).
    table: String,
    tls: bool,
    client: Option<Client>,
}

/// A table name as given (`name` or `schema.name`, letters, digits and `_`) quoted for SQL.
pub fn quote_table(name: &str) -> Result<String> {
    let parts: Vec<&str> = name.split('.').collect();
    let ok = parts.len() <= 2
        && parts.iter().all(|p| {
            let mut c = p.chars();
            c.next()
                .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        });
    if !ok {
        return Err(Error::Usage(format!(
            "--pg-table {name:?}: a name (or schema.name) of letters, digits and _"
        )));
    }
    Ok(parts
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join("."))
}

impl Postgres {
    /// Read the connection string (`postgresql://user:pw@host:port/db?sslmode=...` or
    /// `host=... dbname=...`); nothing is connected yet.
    pub fn new(url: &str, table: &str) -> Result<Postgres> {
        let config = Config::from_str(url).map_err(|e| {
            Error::Usage(format!(
                "--postgres: not a PostgreSQL connection string: {e}"
            ))
        })?;
        let mut config = config;
        if config.get_application_name().is_none() {
            config.application_name("pulse-emit");
        }
        let label = label(&config);
        let tls = config.get_ssl_mode() != postgres::config::SslMode::Disable;
        Ok(Postgres {
            config,
            label,
            table: quote_table(table)?,
            tls,
            client: None,
        })
    }

    fn fail(&self, what: &str, e: impl Into<Error>) -> Error {
        Error::Runtime(format!("postgres {}: {what}: {}", self.label, e.into()))
    }

    /// The open connection, made (and the table created) when there is none.
    fn client(&mut self) -> Result<&mut Client> {
        if self.client.is_none() {
            let mut client = if self.tls {
                let connector = tls_connector().map_err(|e| self.fail("TLS", Error::Runtime(e)))?;
                self.config.connect(connector)
            } else {
                self.config.connect(NoTls)
            }
            .map_err(|e| self.fail("cannot connect", e))?;
            client
                .batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {t} (
                        stat text NOT NULL,
                        key text NOT NULL,
                        start timestamptz NOT NULL,
                        secs integer NOT NULL,
                        name text NOT NULL,
                        value double precision NOT NULL,
                        final boolean NOT NULL,
                        written timestamptz NOT NULL DEFAULT now(),
                        PRIMARY KEY (stat, key, start, secs, name));
                     CREATE TEMP TABLE IF NOT EXISTS pulse_batch (
                        stat text, key text, start bigint, secs integer, name text,
                        value double precision, final boolean) ON COMMIT DELETE ROWS;",
                    t = self.table
                ))
                .map_err(|e| self.fail("cannot create the table", e))?;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    fn write(&mut self, batch: &[Snapshot]) -> Result<()> {
        let mut rows = String::with_capacity(batch.len() * 64);
        for s in batch {
            for (name, v) in &s.values {
                copy_field(&mut rows, &s.stat);
                rows.push('\t');
                copy_field(&mut rows, s.key.as_deref().unwrap_or(""));
                let _ = write!(rows, "\t{}\t{}\t", s.start, s.secs);
                copy_field(&mut rows, name);
                let _ = writeln!(rows, "\t{v}\t{}", if s.is_final { 't' } else { 'f' });
            }
        }
        let table = self.table.clone();
        let client = self.client()?;
        let mut tx = client.transaction()?;
        let mut w = tx.copy_in("COPY pulse_batch FROM STDIN")?;
        w.write_all(rows.as_bytes())
            .map_err(|e| Error::Runtime(format!("COPY: {e}")))?;
        w.finish()?;
        // A temporary table has no statistics: without them the planner takes it for empty
        // and joins it by nested loops (hours for 360,000 rows instead of seconds).
        tx.batch_execute("ANALYZE pulse_batch")?;
        // The windows this batch replaces lose the names it no longer has; then the rows
        // already there are updated where the new value may replace them and differs, and
        // the others inserted. (Two plain statements rather than one INSERT ... ON CONFLICT:
        // its speculative insertion takes about half again as long per row. A batch holds
        // one snapshot per window, collapsed by `Latest`, so no row comes twice.)
        tx.batch_execute(&format!(
            "DELETE FROM {table} t USING
                (SELECT DISTINCT stat, key, start, secs, final FROM pulse_batch) b
             WHERE t.stat = b.stat AND t.key = b.key AND t.secs = b.secs
               AND t.start = to_timestamp(b.start) AND (b.final OR NOT t.final)
               AND NOT EXISTS (SELECT 1 FROM pulse_batch p WHERE p.stat = t.stat
                   AND p.key = t.key AND p.secs = t.secs AND to_timestamp(p.start) = t.start
                   AND p.name = t.name);
             UPDATE {table} t SET value = b.value, final = b.final, written = now()
                FROM pulse_batch b
                WHERE t.stat = b.stat AND t.key = b.key AND t.start = to_timestamp(b.start)
                  AND t.secs = b.secs AND t.name = b.name
                  AND (b.final OR NOT t.final)
                  AND (t.value IS DISTINCT FROM b.value OR t.final IS DISTINCT FROM b.final);
             INSERT INTO {table} (stat, key, start, secs, name, value, final, written)
                SELECT stat, key, to_timestamp(start), secs, name, value, final, now()
                FROM pulse_batch b
                WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.stat = b.stat
                    AND t.key = b.key AND t.start = to_timestamp(b.start)
                    AND t.secs = b.secs AND t.name = b.name);"
        ))?;
        tx.commit()?;
        Ok(())
    }
}

impl Sink for Postgres {
    fn name(&self) -> String {
        format!("postgres {}", self.label)
    }

    fn send(&mut self, batch: &[Snapshot]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write(batch).map_err(|e| {
            // Whatever failed, the connection may be unusable: the next try starts afresh.
            self.client = None;
            match e {
                Error::Runtime(m) if m.starts_with("postgres ") => Error::Runtime(m),
                e => self.fail("batch not written", e),
            }
        })
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Error {
        // A server error's own message (with its detail) says more than "db error".
        match e.as_db_error() {
            Some(db) => Error::Runtime(format!("{}: {}", db.severity(), db.message())),
            None => Error::Runtime(e.to_string()),
        }
    }
}

/// A `COPY` text-format field: backslash, tab, newline and carriage return escaped.
fn copy_field(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// `user@host:port/db` for messages: never the password.
fn label(c: &Config) -> String {
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let user = c.get_user().unwrap_or("");
    let db = c.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { "" } else { "@" };
    format!("{user}{at}{host}:{port}/{db}")
}

/// TLS to the server. As libpq does for `sslmode=prefer` and `require`, the connection is
/// encrypted without checking the server's certificate (Debian's own servers use a
/// self-signed one), unless `PGSSLROOTCERT` names a PEM file of the CA to check it against.
fn tls_connector() -> std::result::Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let config = match std::env::var_os("PGSSLROOTCERT") {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            use rustls::pki_types::CertificateDer;
            let shown = std::path::Path::new(&path).display().to_string();
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(&path).map_err(|e| format!("{shown}: {e}"))? {
                let cert = cert.map_err(|e| format!("{shown}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{shown}: a certificate rustls refuses: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("{shown}: no PEM certificate in it"));
            }
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
        None => rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(Unchecked(
                rustls::crypto::ring::default_provider(),
            )))
            .with_no_client_auth(),
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Takes any server certificate, but still checks that the server holds its key (the
/// handshake's signatures), as libpq's `sslmode=require` does.
#[derive(Debug)]
struct Unchecked(rustls::crypto::CryptoProvider);

impl rustls::client::danger::ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        assert_eq!(quote_table("pulse_metrics").unwrap(), "\"pulse_metrics\"");
        assert_eq!(quote_table("m.pulse").unwrap(), "\"m\".\"pulse\"");
        for bad in ["", "a-b", "1a", "a.b.c", "a;drop", "a\"b", "a."] {
            assert!(quote_table(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn label_never_has_the_password() {
        for (url, want) in [
            (
                "postgresql://pulse:s3cr%2Ft@db.example:6432/metrics",
                "pulse@db.example:6432/metrics",
            ),
            (
                "host=/run/pg port=5433 user=me password=hunter2 dbname=m",
                "me@/run/pg:5433/m",
            ),
            ("postgresql://db/m", "db:5432/m"),
        ] {
            let p = Postgres::new(url, DEFAULT_TABLE).unwrap();
            assert_eq!(p.label, want);
            assert!(!p.name().contains("s3cr") && !p.name().contains("hunter2"));
        }
        assert!(Postgres::new("postgresql://a/b?bogus=1", DEFAULT_TABLE).is_err());
    }

    #[test]
    fn copy_fields_escape_what_copy_reads_specially() {
        let mut s = String::new();
        copy_field(&mut s, "a\tb\\c\nd\re");
        assert_eq!(s, "a\\tb\\\\c\\nd\\re");
    }
}
