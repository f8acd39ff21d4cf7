//! pipescan: a per-message mail content filter. See pipescan(1) and DESIGN.md.
//!
//! main is thin: it parses the arguments, loads the configuration, runs one mode and turns the
//! result into an exit code. Everything an MTA can see (exit codes, the status line) follows
//! DESIGN.md §1: no usage error, config error or panic of ours ever makes the MTA bounce mail.
#![forbid(unsafe_code)]

use pipescan::{admin, cli, config, control, envelope, filter, log, nss, scan, timings};

use clap::error::ErrorKind;
use control::{Exit, Failure};
use std::io::IsTerminal;

fn main() -> std::process::ExitCode {
    control::install_panic_hook();
    // scripts/build links this crate alone with +crt-static: the library cannot see it.
    nss::set_static_build(cfg!(target_feature = "crt-static"));
    let exit = match cli::Cli::parse_args(std::env::args_os()) {
        Ok(cli) => match cli.command {
            Some(cli::Command::CheckConfig {
                config,
                policy,
                ping,
            }) => check_config(config.as_deref(), policy.as_deref(), ping),
            Some(cli::Command::Release {
                id,
                to,
                format,
                config,
            }) => with_config(config.as_deref(), |cfg| {
                admin::release(cfg, &id, &to, format)
            }),
            Some(cli::Command::Quarantine {
                command:
                    cli::QuarantineCommand::List {
                        since,
                        category,
                        config,
                    },
            }) => with_config(config.as_deref(), |cfg| {
                admin::list(cfg, since.map(|d| d.0), category.as_deref())
            }),
            None => filter_mode(&cli.filter),
        },
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            Exit::Ok
        }
        Err(e) if is_admin_command() => {
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
            control::status_line(&format!("4.3.5 pipescan: bad arguments: {first}"));
            eprint!("{msg}");
            Exit::TempFail
        }
    };
    exit.sysexits().into()
}

/// Runs an admin command with the loaded configuration (78 when it is broken).
fn with_config(path: Option<&std::path::Path>, f: impl FnOnce(&config::Config) -> Exit) -> Exit {
    match config::load(path, None) {
        Ok(loaded) => {
            let c = &loaded.config;
            log::init(
                &c.general.syslog_ident,
                c.general.syslog.then(|| c.general.syslog_socket.clone()),
                &c.general.log_file,
                false,
            );
            f(c)
        }
        Err(e) => {
            eprintln!("pipescan: configuration error: {e}");
            Exit::Config
        }
    }
}

/// Does argv name an admin subcommand (before any `--`)?
fn is_admin_command() -> bool {
    // args_os: an argument that is not UTF-8 (a hostile envelope address) must not panic here.
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| matches!(a.to_str(), Some("release" | "quarantine" | "check-config")))
}

fn check_config(path: Option<&std::path::Path>, bank: Option<&str>, ping: bool) -> Exit {
    match config::load(path, bank) {
        Ok(loaded) => {
            // The user a run started as root becomes (the static build reads only the files).
            match control::check_user(&loaded.config.general.user) {
                Ok(None) => {}
                Ok(Some(warning)) => eprintln!("pipescan: warning: {warning}"),
                Err(e) => {
                    eprintln!("pipescan: configuration error: {e}");
                    return Exit::Config;
                }
            }
            let src = match &loaded.source {
                Some(p) => p.display().to_string(),
                None => format!("{} (missing: built-in defaults)", config::DEFAULT_PATH),
            };
            println!("# pipescan {}: configuration OK", env!("CARGO_PKG_VERSION"));
            println!("# file: {src}");
            let banks: Vec<&String> = loaded.config.policy.keys().collect();
            if !banks.is_empty() {
                println!(
                    "# policy banks: {}",
                    banks
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if let Some(b) = &loaded.bank {
                println!("# effective settings with policy bank {b}");
            } else {
                println!("# effective settings (no policy bank)");
            }
            println!("# general.hostname in use: {}", loaded.config.hostname());
            match toml::to_string_pretty(&loaded.config) {
                Ok(t) => print!("{t}"),
                Err(e) => println!("# (cannot print settings: {e})"),
            }
            if ping && !scan::ping_all(&loaded.config) {
                return Exit::Unavailable;
            }
            Exit::Ok
        }
        Err(e) => {
            eprintln!("pipescan: configuration error: {e}");
            Exit::Config
        }
    }
}

fn filter_mode(args: &cli::FilterArgs) -> Exit {
    let started = std::time::Instant::now();
    if args.timings {
        timings::enable();
    }
    let mode = filter::Mode::of(args);
    let loaded = timings::time("config", || {
        config::load(args.config.as_deref(), args.policy.as_deref())
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
            control::status_line("4.3.5 pipescan: configuration error, message kept for retry");
            log::warn(&format!("configuration error: {e}"));
            return Exit::TempFail;
        }
    };
    let cfg = &std::sync::Arc::new(loaded.config);
    log::init(
        &cfg.general.syslog_ident,
        cfg.general
            .syslog
            .then(|| cfg.general.syslog_socket.clone()),
        &cfg.general.log_file,
        args.verbose || mode == filter::Mode::DryRun,
    );
    log::set_run(
        args.queue_id
            .as_ref()
            .map(|q| q.to_string_lossy())
            .as_deref(),
    );
    // Before the message is read or a temporary file made: whatever follows runs unprivileged.
    match control::drop_root(&cfg.general.user) {
        Ok(control::Privileges::StillRoot(why)) => log::warn(&why),
        Ok(_) => {}
        Err(e) => {
            control::status_line(
                "4.3.0 pipescan: cannot drop root privileges, message kept for retry",
            );
            log::warn(&format!("cannot switch to [general] user: {e}"));
            return Exit::TempFail;
        }
    }
    if let Err(e) = control::install_signal_handlers(cfg.general.deadline.0) {
        log::warn(&format!("cannot install signal handlers: {e}"));
        control::start_deadline(cfg.general.deadline.0);
    }

    // procmail and manual dry runs may give no envelope at all.
    let (sender, recipients) = match args.envelope() {
        Some(e) => e,
        None if mode != filter::Mode::Reinject => (String::new(), Vec::new()),
        None => return usage("no envelope sender or recipients given"),
    };
    if recipients.is_empty() && mode == filter::Mode::Reinject {
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
            control::status_line(&f.line());
            log::warn(&f.line());
            return f.exit;
        }
    };
    let exit = filter::run(cfg, &env, mode, &mut std::io::stdin().lock());
    if args.timings {
        eprintln!("{}", timings::line(started.elapsed()));
    }
    exit
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
    control::status_line(&line);
    eprintln!("usage: pipescan [OPTIONS] -f SENDER -- RECIPIENT...   (see pipescan --help)");
    if interactive {
        Exit::Usage
    } else {
        Exit::TempFail
    }
}
