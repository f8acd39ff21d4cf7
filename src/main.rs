//! pipescan: a per-message mail content filter. See pipescan(1) and DESIGN.md.
//!
//! main is thin: it parses the arguments, loads the configuration, runs one mode and turns the
//! result into an exit code. Everything an MTA can see (exit codes, the status line) follows
//! DESIGN.md §1: no usage error, config error or panic of ours ever makes the MTA bounce mail.
#![forbid(unsafe_code)]

use pipescan::{admin, cli, config, envelope, log, perms, process, run, scan, timings};

use clap::error::ErrorKind;
use pipescan::outcome::{Exit, Failure};
use std::io::IsTerminal;

fn main() -> std::process::ExitCode {
    process::install_panic_hook();
    // scripts/build links this crate alone with +crt-static: the library cannot see it.
    process::set_static_build(cfg!(target_feature = "crt-static"));
    let exit = match cli::Cli::parse_args(std::env::args_os()) {
        Ok(cli) => match cli.command {
            Some(cli::Command::CheckConfig {
                config,
                policy,
                ping,
                verbose: _,
            }) => check_config(config.as_deref(), policy.as_deref(), ping),
            Some(cli::Command::Release {
                id,
                to,
                format,
                config,
                policy,
                verbose,
            }) => with_config(config.as_deref(), policy.as_deref(), verbose, |cfg| {
                admin::release::release(cfg, &id, &to, format)
            }),
            Some(cli::Command::Quarantine {
                command:
                    cli::QuarantineCommand::List {
                        since,
                        category,
                        config,
                        policy,
                        verbose,
                    },
            }) => with_config(config.as_deref(), policy.as_deref(), verbose, |cfg| {
                admin::list::list(cfg, since, category.as_deref())
            }),
            Some(cli::Command::ImportAmavisd { paths }) => admin::import::import(&paths),
            Some(cli::Command::Sql {
                command: cli::SqlCommand::Schema,
            }) => {
                process::say(format_args!("{}", pipescan::sql::schema::SCHEMA));
                Exit::Ok
            }
            Some(cli::Command::Quarantine {
                command:
                    cli::QuarantineCommand::Expire {
                        older_than,
                        dry_run,
                        config,
                        policy,
                        verbose,
                    },
            }) => with_config(config.as_deref(), policy.as_deref(), verbose, |cfg| {
                admin::expire::expire(cfg, older_than, dry_run, verbose)
            }),
            None => filter_mode(&cli.filter),
        },
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            Exit::Ok
        }
        Err(e) if cli::command_at(&std::env::args_os().collect::<Vec<_>>()).is_some() => {
            // release, quarantine, check-config: a person at a shell, not an MTA.
            let _ = e.print();
            Exit::Usage
        }
        Err(e) => {
            // An MTA-facing run with bad arguments (a master.cf typo) must defer, not bounce.
            let msg = e.to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            process::status_line(&format!("4.3.5 pipescan: bad arguments: {first}"));
            eprint!("{msg}");
            Exit::TempFail
        }
    };
    exit.sysexits().into()
}

/// Runs an admin command with the loaded configuration (78 when it is broken).
fn with_config(
    path: Option<&std::path::Path>,
    bank: Option<&str>,
    verbose: bool,
    f: impl FnOnce(&config::settings::Config) -> Exit,
) -> Exit {
    match config::load::load(path, bank) {
        Ok(loaded) => {
            // Run by a person, often as root: the files the config names must be safe too.
            let refused: Vec<config::errors::ConfigError> =
                perms::standing(perms::check(&loaded), None)
                    .iter()
                    .map(|f| f.to_error(&loaded))
                    .collect();
            if !refused.is_empty() {
                print_errors(refused.iter());
                return Exit::Config;
            }
            let c = &loaded.config;
            log::init(
                &c.general.syslog_ident,
                c.general.syslog.then(|| c.general.syslog_socket.clone()),
                &c.general.log_file,
                verbose,
            );
            f(c)
        }
        Err(e) => {
            print_errors(e.iter());
            Exit::Config
        }
    }
}

/// Every configuration error on its own line, for a person.
fn print_errors<'a>(errors: impl Iterator<Item = &'a config::errors::ConfigError>) {
    for e in errors {
        eprintln!("pipescan: configuration error: {e}");
    }
}

/// A filtering run with a broken configuration: the first error in the status line (one line),
/// every one in the log, and exit 75 (never bounce mail for a config problem).
fn config_deferral<'a>(mut errors: impl Iterator<Item = &'a config::errors::ConfigError>) -> Exit {
    if let Some(first) = errors.next() {
        let one: String = first
            .to_string()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        process::status_line(&format!(
            "4.3.5 pipescan: configuration error, message kept for retry: {one}"
        ));
        log::warn(&format!("configuration error: {first}"));
    }
    for e in errors {
        log::warn(&format!("configuration error: {e}"));
    }
    Exit::TempFail
}

fn check_config(path: Option<&std::path::Path>, bank: Option<&str>, ping: bool) -> Exit {
    match config::load::load(path, bank) {
        Ok(loaded) => {
            // What would defer every message: permissions, and the files, directories, user and
            // program the settings name, checked as the user the run will be.
            let (deployment, user_uid) = perms::deployment(&loaded.config);
            let mut errors: Vec<config::errors::ConfigError> =
                perms::standing(perms::check(&loaded), user_uid)
                    .iter()
                    .map(|f| f.to_error(&loaded))
                    .collect();
            errors.extend(
                deployment
                    .into_iter()
                    .map(|(key, message)| loaded.error(Some(&key), message)),
            );
            if !errors.is_empty() {
                print_errors(errors.iter());
                return Exit::Config;
            }
            let src = match &loaded.source {
                Some(p) => p.display().to_string(),
                None => format!(
                    "{} (missing: built-in defaults)",
                    config::load::DEFAULT_PATH
                ),
            };
            process::sayln(format_args!(
                "# pipescan {}: configuration OK",
                env!("CARGO_PKG_VERSION")
            ));
            process::sayln(format_args!("# file: {src}"));
            let banks: Vec<&String> = loaded.config.policy.keys().collect();
            if !banks.is_empty() {
                process::sayln(format_args!(
                    "# policy banks: {}",
                    banks
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if let Some(b) = &loaded.bank {
                process::sayln(format_args!("# effective settings with policy bank {b}"));
            } else {
                process::sayln(format_args!("# effective settings (no policy bank)"));
            }
            process::sayln(format_args!(
                "# general.hostname in use: {}",
                loaded.config.hostname()
            ));
            match toml::to_string_pretty(&loaded.config) {
                Ok(t) => process::say(format_args!("{t}")),
                Err(e) => process::sayln(format_args!("# (cannot print settings: {e})")),
            }
            if ping {
                // Both, so every unanswering server is named at once.
                let scanners = scan::registry::ping_all(&loaded.config);
                let couriers = pipescan::act::courier::registry::ping(&loaded.config);
                if !(scanners && couriers) {
                    return Exit::Unavailable;
                }
            }
            if ping && !admin::sql::ping(&loaded.config) {
                return Exit::Unavailable;
            }
            Exit::Ok
        }
        Err(e) => {
            print_errors(e.iter());
            Exit::Config
        }
    }
}

fn filter_mode(args: &cli::FilterArgs) -> Exit {
    let started = std::time::Instant::now();
    if args.timings {
        timings::enable();
    }
    let mode = cli::Mode::of(args);
    let loaded = timings::time("config", || {
        config::load::load(args.config.as_deref(), args.policy.as_deref())
    });
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            // Never bounce mail because of a typo in the config: defer and say where it is.
            log::init("pipescan", None, std::path::Path::new(""), true);
            log::set_run(
                args.queue_id
                    .as_ref()
                    .map(|q| q.to_string_lossy())
                    .as_deref(),
            );
            return config_deferral(e.iter());
        }
    };
    // Permissions are looked at as started (a directory only root can enter is still readable);
    // a file owned by the user the run switches to is forgiven below, once that user is known.
    let permissions: Vec<(Option<u32>, config::errors::ConfigError)> = perms::check(&loaded)
        .iter()
        .map(|f| (f.owner, f.to_error(&loaded)))
        .collect();
    let cfg = &std::sync::Arc::new(loaded.config);
    log::init(
        &cfg.general.syslog_ident,
        cfg.general
            .syslog
            .then(|| cfg.general.syslog_socket.clone()),
        &cfg.general.log_file,
        args.verbose || mode == cli::Mode::DryRun,
    );
    log::set_run(
        args.queue_id
            .as_ref()
            .map(|q| q.to_string_lossy())
            .as_deref(),
    );
    // Before the message is read or a temporary file made: whatever follows runs unprivileged.
    let run_uid = match process::drop_root(&cfg.general.user) {
        Ok(process::Privileges::StillRoot(why)) => {
            log::warn(&why);
            None
        }
        Ok(process::Privileges::Switched(_, uid, _)) => Some(uid),
        Ok(_) => None,
        Err(e) => {
            process::status_line(
                "4.3.0 pipescan: cannot drop root privileges, message kept for retry",
            );
            log::warn(&format!("cannot switch to [general] user: {e}"));
            return Exit::TempFail;
        }
    };
    let refused: Vec<&config::errors::ConfigError> = permissions
        .iter()
        .filter(|(owner, _)| owner.is_none() || *owner != run_uid)
        .map(|(_, e)| e)
        .collect();
    if !refused.is_empty() {
        return config_deferral(refused.into_iter());
    }
    if let Err(e) = process::install_signal_handlers(cfg.general.deadline.0) {
        log::warn(&format!("cannot install signal handlers: {e}"));
        process::start_deadline(cfg.general.deadline.0);
    }

    // procmail and manual dry runs may give no envelope at all.
    let (sender, recipients) = match args.envelope() {
        Some(e) => e,
        None if mode != cli::Mode::Reinject => (String::new(), Vec::new()),
        None => return usage("no envelope sender or recipients given"),
    };
    if recipients.is_empty() && mode == cli::Mode::Reinject {
        return usage("no recipients given");
    }
    let env = match envelope::Envelope::new(sender, recipients) {
        Ok(e) => e,
        Err(e) => {
            let f = Failure {
                exit: Exit::DataErr,
                status: "5.1.3",
                reason: format!("bad envelope address: {e}"),
            };
            process::status_line(&f.line());
            log::warn(&f.line());
            return f.exit;
        }
    };
    let (client, warnings) = envelope::Client::new(envelope::Given {
        address: args.client_address.as_deref(),
        name: args.client_name.as_deref(),
        helo: args.helo.as_deref(),
        protocol: args.client_protocol.as_deref(),
        sasl_username: args.sasl_username.as_deref(),
    });
    for w in &warnings {
        log::warn(w);
    }
    let queue_id = args
        .queue_id
        .as_ref()
        .map(|q| log::clean_queue_id(&q.to_string_lossy()));
    let (env, warning) = env
        .with_client(client)
        .with_queue_id(queue_id)
        .with_envid(args.envid.as_deref());
    let (env, orcpt_warning) = env.with_original_recipients(args.original_recipient.clone());
    for w in warning.iter().chain(orcpt_warning.iter()) {
        log::warn(w);
    }
    // amavisd's ORIGINATING for our own clients (SASL or [lists] mynetworks), unless the
    // transport named a bank: one transport serves inbound and outbound mail.
    let originating;
    let (cfg, bank) = match originating_bank(cfg, &env, args.policy.is_some()) {
        Ok(Some(c)) => {
            originating = std::sync::Arc::new(c);
            (&originating, Some(cfg.auth.originating_bank.as_str()))
        }
        Ok(None) => (cfg, args.policy.as_deref()),
        Err(e) => {
            let f = Failure::tempfail("4.3.5", format!("configuration error: {e}"));
            process::status_line(&f.line());
            log::warn(&f.line());
            return f.exit;
        }
    };
    let env = env.with_bank(bank);
    let exit = run::run(cfg, &env, mode, &mut std::io::stdin().lock());
    if args.timings {
        eprintln!("{}", timings::line(started.elapsed()));
    }
    exit
}

/// The settings with `[auth] originating_bank` applied when the client is ours and no
/// `--policy` was given.
fn originating_bank(
    cfg: &config::settings::Config,
    env: &envelope::Envelope,
    policy_given: bool,
) -> Result<Option<config::settings::Config>, String> {
    let bank = &cfg.auth.originating_bank;
    if policy_given || bank.is_empty() || !env.client.originating(&cfg.lists.mynetworks) {
        return Ok(None);
    }
    config::load::with_bank(cfg, bank).map(Some)
}

/// Missing envelope arguments: a person at a terminal gets 64 and the usage; an MTA (stdin not a
/// terminal) gets 75, because a misconfigured transport must not bounce mail.
fn usage(what: &str) -> Exit {
    let interactive = std::io::stdin().is_terminal();
    let line = if interactive {
        format!("5.5.4 pipescan: {what}")
    } else {
        format!("4.3.5 pipescan: {what}")
    };
    process::status_line(&line);
    eprintln!("usage: pipescan [OPTIONS] -f SENDER -- RECIPIENT...   (see pipescan --help)");
    if interactive {
        Exit::Usage
    } else {
        Exit::TempFail
    }
}
