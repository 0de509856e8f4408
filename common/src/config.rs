//! Typed configuration, read once from environment variables at start-up.
//!
//! Every variable has a safe development default so that `cargo run` works on a fresh clone.
//! A value that does not parse stops the process with a message naming the variable, and
//! `APP_ENV=production` refuses settings that are only acceptable on a developer's machine.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A configuration problem, always naming the variable at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name}: cannot use {value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("{name}: {reason} (refused because APP_ENV=production)")]
    UnsafeInProduction { name: &'static str, reason: String },
}

/// Which kind of deployment this is; production refuses development shortcuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

impl FromStr for AppEnv {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            _ => Err("expected development or production".into()),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, the default.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pretty" | "text" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            _ => Err("expected pretty or json".into()),
        }
    }
}

/// The port each process listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    pub gateway: u16,
    pub auth: u16,
    pub events: u16,
    pub orders: u16,
    pub ml: u16,
}

/// Where the gateway (and services that call each other) find the other processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrls {
    pub auth: String,
    pub events: String,
    pub orders: String,
    pub ml: String,
}

/// All of Holdfast's configuration. See the README for the table of variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub app_env: AppEnv,
    pub log_format: LogFormat,
    /// Address every listener binds to.
    pub host: IpAddr,
    pub ports: Ports,
    pub service_urls: ServiceUrls,
    /// Root folder of the embedded document store (one SQLite file per service).
    pub data_dir: PathBuf,
    /// Set: the TTL store is Redis. Unset: the in-process store.
    pub redis_url: Option<String>,
    /// Set: the message bus is RabbitMQ. Unset: the in-process bus.
    pub amqp_url: Option<String>,
    /// Set: the document store is MongoDB. Unset: SQLite under `data_dir`.
    pub mongodb_uri: Option<String>,
    /// How long the gateway waits for an upstream answer.
    pub upstream_timeout: Duration,
    /// How long a stopping process waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration from a map, as tests do.
    pub fn from_map(vars: &HashMap<&str, &str>) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| vars.get(name).map(|v| v.to_string()))
    }

    /// Reads configuration through `lookup`, which answers a variable's value if it is set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup: &lookup };
        let ports = Ports {
            gateway: env.parse("GATEWAY_PORT", 8080)?,
            auth: env.parse("AUTH_PORT", 4001)?,
            events: env.parse("EVENTS_PORT", 4002)?,
            orders: env.parse("ORDERS_PORT", 4003)?,
            ml: env.parse("ML_PORT", 5000)?,
        };
        let service_urls = ServiceUrls {
            auth: env.url("AUTH_SERVICE_URL", ports.auth)?,
            events: env.url("EVENTS_SERVICE_URL", ports.events)?,
            orders: env.url("ORDERS_SERVICE_URL", ports.orders)?,
            ml: env.url("ML_SERVICE_URL", ports.ml)?,
        };
        let settings = Settings {
            app_env: env.parse("APP_ENV", AppEnv::Development)?,
            log_format: env.parse("LOG_FORMAT", LogFormat::Pretty)?,
            host: env.parse("HOST", IpAddr::from([127, 0, 0, 1]))?,
            ports,
            service_urls,
            data_dir: PathBuf::from(env.string("DATA_DIR").unwrap_or_else(|| "./data".into())),
            redis_url: env.string("REDIS_URL"),
            amqp_url: env.string("AMQP_URL"),
            mongodb_uri: env.string("MONGODB_URI"),
            upstream_timeout: Duration::from_millis(env.positive("UPSTREAM_TIMEOUT_MS", 10_000)?),
            shutdown_grace: Duration::from_secs(env.positive("SHUTDOWN_GRACE_SECONDS", 20)?),
        };
        settings.check_production()?;
        Ok(settings)
    }

    /// Development shortcuts that a production deployment must not rely on.
    fn check_production(&self) -> Result<(), ConfigError> {
        if self.app_env != AppEnv::Production {
            return Ok(());
        }
        // Embedded adapters keep holds and sessions in one process's memory: a restart or a
        // second replica would lose or split them.
        for (name, value) in [
            ("REDIS_URL", &self.redis_url),
            ("AMQP_URL", &self.amqp_url),
            ("MONGODB_URI", &self.mongodb_uri),
        ] {
            if value.is_none() {
                return Err(ConfigError::UnsafeInProduction {
                    name,
                    reason: "must be set; the embedded adapter is for development".into(),
                });
            }
        }
        Ok(())
    }

    /// True when the process runs with `APP_ENV=production`.
    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }
}

/// Reads variables through a lookup function and parses them with errors naming the variable.
struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    /// The trimmed value, treating an empty string as unset.
    fn string(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn parse<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.string(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                value: raw,
                reason: e.to_string(),
            }),
        }
    }

    fn positive(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        let value = self.parse(name, default)?;
        if value == 0 {
            return Err(ConfigError::Invalid {
                name,
                value: "0".into(),
                reason: "must be greater than zero".into(),
            });
        }
        Ok(value)
    }

    fn url(&self, name: &'static str, default_port: u16) -> Result<String, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(format!("http://127.0.0.1:{default_port}"));
        };
        if !(raw.starts_with("http://") || raw.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name,
                value: raw,
                reason: "expected an http:// or https:// URL".into(),
            });
        }
        Ok(raw.trim_end_matches('/').to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_map(&vars.iter().copied().collect())
    }

    #[test]
    fn defaults_describe_the_embedded_development_setup() {
        let s = settings(&[]).expect("defaults are valid");
        assert_eq!(s.app_env, AppEnv::Development);
        assert_eq!(s.ports.gateway, 8080);
        assert_eq!(s.ports.ml, 5000);
        assert_eq!(s.service_urls.orders, "http://127.0.0.1:4003");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert!(s.redis_url.is_none() && s.amqp_url.is_none() && s.mongodb_uri.is_none());
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = settings(&[("AUTH_PORT", "forty")]).unwrap_err();
        assert!(err.to_string().starts_with("AUTH_PORT:"), "{err}");
        let err = settings(&[("LOG_FORMAT", "xml")]).unwrap_err();
        assert!(err.to_string().starts_with("LOG_FORMAT:"), "{err}");
        let err = settings(&[("EVENTS_SERVICE_URL", "events:4002")]).unwrap_err();
        assert!(err.to_string().starts_with("EVENTS_SERVICE_URL:"), "{err}");
        let err = settings(&[("UPSTREAM_TIMEOUT_MS", "0")]).unwrap_err();
        assert!(err.to_string().starts_with("UPSTREAM_TIMEOUT_MS:"), "{err}");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let s = settings(&[("REDIS_URL", "  "), ("GATEWAY_PORT", "")]).unwrap();
        assert_eq!(s.redis_url, None);
        assert_eq!(s.ports.gateway, 8080);
    }

    #[test]
    fn production_refuses_embedded_adapters() {
        let err = settings(&[("APP_ENV", "production")]).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::UnsafeInProduction {
                name: "REDIS_URL",
                ..
            }
        ));
        let ok = settings(&[
            ("APP_ENV", "production"),
            ("REDIS_URL", "redis://redis:6379"),
            ("AMQP_URL", "amqp://rabbitmq:5672"),
            ("MONGODB_URI", "mongodb://mongo:27017/?replicaSet=rs0"),
        ]);
        assert!(ok.unwrap().is_production());
    }

    #[test]
    fn service_urls_lose_a_trailing_slash() {
        let s = settings(&[("ML_SERVICE_URL", "http://ml:5000/")]).unwrap();
        assert_eq!(s.service_urls.ml, "http://ml:5000");
    }
}
