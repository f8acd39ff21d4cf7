//! Command-line definitions for every mode.
//!
//! Parsing never exits by itself: `main` uses `try_parse` and turns a usage error into exit 75
//! with a `4.3.5` line, because a typo in master.cf must park mail in the queue, not bounce it.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "pipescan",
    version,
    about = "Per-message mail content filter: scan, decide per recipient, reinject with sendmail",
    long_about = "Per-message mail content filter for a Postfix pipe transport, procmail or a Sendmail \
prog mailer. Reads one message on stdin, scans it, applies the policy and reinjects it with \
`sendmail -i -f SENDER -- RCPT...`, exiting with a sysexits code the MTA understands \
(0 delivered or discarded, 75 retry later, 69 or 65 bounce).",
    after_help = "Forms:\n  pipescan [OPTIONS] -f SENDER -- RECIPIENT...   (Postfix pipe, preferred)\n  \
pipescan [OPTIONS] SENDER RECIPIENT...         (positional form)\n  \
pipescan --stdout [OPTIONS] [-f SENDER] [-- RECIPIENT...]   (procmail :0 fw)\n  \
pipescan [-c FILE] [--policy NAME] check-config [--ping]\n  \
pipescan [-c FILE] release ID [--to ADDRESS]... [--format resend|attach]\n  \
pipescan [-c FILE] quarantine list [--since DURATION] [--category C]\n  \
pipescan [-c FILE] quarantine expire [--older-than DURATION] [-n] [-v]\n\
pipescan import-amavisd [DIR-OR-FILE...]\n\
A command word is read only first or after -c, --policy and -v: after -f, a sender or -- it is an address.\n\n\
See pipescan(1) and pipescan.toml(5).",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Configuration file [default: /etc/pipescan/pipescan.toml; missing = built-in defaults]
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Policy bank to apply, e.g. ORIGINATING for locally submitted mail
    #[arg(long, value_name = "NAME")]
    pub policy: Option<String>,

    /// Envelope sender; an empty value is the null sender <>
    #[arg(
        short = 'f',
        long = "from",
        value_name = "SENDER",
        allow_hyphen_values = true
    )]
    pub sender: Option<String>,

    /// The MTA's queue id, first on every log line (Postfix: ${queue_id}; Sendmail: $i)
    // Only for the log: bytes that are not UTF-8 are replaced, never a reason to defer mail.
    #[arg(long = "queue-id", value_name = "ID", allow_hyphen_values = true,
          value_parser = clap::builder::OsStringValueParser::new())]
    pub queue_id: Option<std::ffi::OsString>,

    /// The SMTP client's IP address (Postfix: ${client_address}; Sendmail: ${client_addr}).
    /// Read by SPF, XFORWARD and the choice of the ORIGINATING bank; empty or "unknown" = none
    #[arg(long = "client-address", value_name = "IP", allow_hyphen_values = true)]
    pub client_address: Option<String>,

    /// The SMTP client's HELO/EHLO name (Postfix: ${client_helo}; Sendmail: $s)
    #[arg(long = "helo", value_name = "NAME", allow_hyphen_values = true)]
    pub helo: Option<String>,

    /// The SASL login of an authenticated submitter (Postfix: ${sasl_username};
    /// Sendmail: ${auth_authen}); empty = not authenticated
    #[arg(
        long = "sasl-username",
        value_name = "LOGIN",
        allow_hyphen_values = true
    )]
    pub sasl_username: Option<String>,

    /// Decide and print the verdict, the reinjection argv and the resulting message; deliver nothing
    #[arg(long, conflicts_with = "stdout")]
    pub dry_run: bool,

    /// Write the resulting message to stdout instead of reinjecting (procmail filter mode)
    #[arg(long)]
    pub stdout: bool,

    /// Also log to stderr
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Print where the time went (read, parse, each scanner, policy, reinjection) on stderr
    #[arg(long)]
    pub timings: bool,

    /// SENDER RECIPIENT... (positional form), or RECIPIENT... after -f SENDER --.
    /// Everything after the first address is an address too, even "-fattacker@example": an MTA
    /// hands over whatever RCPT TO said.
    #[arg(
        value_name = "ADDRESS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub addresses: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration (and every policy bank), print the effective settings
    CheckConfig {
        /// Configuration file [default: /etc/pipescan/pipescan.toml]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print the settings as this policy bank makes them
        #[arg(long, value_name = "NAME")]
        policy: Option<String>,
        /// Also contact every configured spamd and clamd server (exit 69 if one does not answer)
        #[arg(long)]
        ping: bool,
        /// Accepted for command lines copied from a filter run; no effect here
        #[arg(short = 'v', long)]
        verbose: bool,
    },
    /// Reinject a quarantined message to its original recipients (or --to)
    Release {
        /// The quarantine id (X-Quarantine-ID, 12 characters)
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Release to these addresses instead of the original recipients
        #[arg(long = "to", value_name = "ADDRESS")]
        to: Vec<String>,
        /// resend: the original message; attach: a notice with the original attached
        #[arg(long, value_enum, default_value = "resend")]
        format: crate::admin::release::Format,
        /// Configuration file [default: /etc/pipescan/pipescan.toml]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Apply this policy bank (its quarantine and reinject settings)
        #[arg(long, value_name = "NAME")]
        policy: Option<String>,
        /// Also log to stderr
        #[arg(short = 'v', long)]
        verbose: bool,
    },
    /// Print the pipescan.toml equivalent of an amavisd-new configuration (evaluated with perl)
    ImportAmavisd {
        /// conf.d directories or files, read in order [default: /usr/share/amavis/conf.d and
        /// /etc/amavis/conf.d, else /etc/amavisd.conf]
        #[arg(value_name = "DIR-OR-FILE")]
        paths: Vec<PathBuf>,
    },
    /// Look at the quarantine
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// One line per quarantined message: id, date, category, sender, subject
    List {
        /// Only messages quarantined within this time, e.g. 24h or 7d (units s, m, h, d)
        #[arg(long, value_name = "DURATION", value_parser = since)]
        since: Option<std::time::Duration>,
        /// Only this category (virus, banned, spam, badh, unchecked, or a log name: INFECTED)
        #[arg(long, value_name = "CATEGORY")]
        category: Option<String>,
        /// Configuration file [default: /etc/pipescan/pipescan.toml]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Apply this policy bank (its quarantine settings)
        #[arg(long, value_name = "NAME")]
        policy: Option<String>,
        /// Also log to stderr
        #[arg(short = 'v', long)]
        verbose: bool,
    },
    /// Remove quarantined files older than [quarantine] max_age (or --older-than)
    Expire {
        /// Remove files older than this instead of max_age, e.g. 7d (units s, m, h, d)
        #[arg(long, value_name = "DURATION", value_parser = since)]
        older_than: Option<std::time::Duration>,
        /// Only say what would be removed
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// Configuration file [default: /etc/pipescan/pipescan.toml]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Apply this policy bank (its quarantine settings)
        #[arg(long, value_name = "NAME")]
        policy: Option<String>,
        /// One line per removed file, and log to stderr
        #[arg(short = 'v', long)]
        verbose: bool,
    },
}

/// `--since`, `--older-than`: a duration with a unit, days (`7d`) included.
fn since(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<crate::config::units::Dur>().map(|d| d.0)
}

/// The command words, and the options of every command that may be written before one.
const COMMANDS: &[&str] = &["check-config", "release", "quarantine", "import-amavisd"];

/// Where the command word is in `args` (args[0] is the program): the first argument that is
/// not `-c FILE`, `--config FILE`, `--policy NAME` or `-v` (in any of clap's spellings), if it
/// is a command word. `pipescan -c FILE release ID` is the release command; `pipescan -f S --
/// release`, `pipescan S release` and `pipescan -f S release` name a recipient "release".
pub fn command_at<T: AsRef<std::ffi::OsStr>>(args: &[T]) -> Option<usize> {
    let mut i = 1;
    while let Some(a) = args.get(i) {
        let a = a.as_ref().to_str()?;
        if COMMANDS.contains(&a) {
            return Some(i);
        }
        i += match a {
            "-v" | "--verbose" => 1,
            "-c" | "--config" | "--policy" => 2,
            _ if a.starts_with("--config=") || a.starts_with("--policy=") => 1,
            // -vv, -vc FILE, -cFILE, -vcFILE
            _ if a.len() > 1 && a.starts_with('-') && !a.starts_with("--") => {
                let flags = a[1..].trim_start_matches('v');
                match flags {
                    "" => 1,
                    "c" => 2,
                    _ if flags.starts_with('c') => 1,
                    _ => return None,
                }
            }
            _ => return None,
        };
    }
    None
}

/// `args` with the options written before the command word moved after it (and after `list`
/// for `quarantine list`), where the command takes them.
fn hoist_command<T: Into<std::ffi::OsString> + Clone>(args: Vec<T>) -> Vec<std::ffi::OsString> {
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let Some(at) = command_at(&args) else {
        return args;
    };
    let mut end = at + 1;
    if args[at] == "quarantine"
        && args
            .get(end)
            .and_then(|a| a.to_str())
            .is_some_and(|a| !a.starts_with('-'))
    {
        end += 1;
    }
    let mut out = vec![args[0].clone()];
    out.extend_from_slice(&args[at..end]);
    out.extend_from_slice(&args[1..at]);
    out.extend_from_slice(&args[end..]);
    out
}

impl Cli {
    /// Parses the arguments. In the positional form everything after the sender is an address
    /// (clap's trailing_var_arg); an unknown option in front of the addresses would then become
    /// the sender, so a first address starting with `-` is refused as an unknown option (use
    /// `-f SENDER --` for such a sender).
    pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::CommandFactory;
        let args = hoist_command(args.into_iter().collect());
        let cli = <Cli as clap::Parser>::try_parse_from(args)?;
        if cli.command.is_none()
            && cli.filter.sender.is_none()
            && let Some(first) = cli.filter.addresses.first()
            && first.starts_with('-')
        {
            return Err(Cli::command().error(
                clap::error::ErrorKind::UnknownArgument,
                format!(
                    "unexpected argument {first:?} (a sender starting with '-' needs the form -f SENDER -- RECIPIENT...)"
                ),
            ));
        }
        Ok(cli)
    }
}

impl FilterArgs {
    /// Splits the addresses into (sender, recipients) for either invocation form.
    /// None when no sender was given at all.
    pub fn envelope(&self) -> Option<(String, Vec<String>)> {
        match &self.sender {
            Some(s) => Some((s.clone(), self.addresses.clone())),
            None => {
                let (first, rest) = self.addresses.split_first()?;
                Some((first.clone(), rest.to_vec()))
            }
        }
    }
}

/// How the result leaves the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Reinject,
    Stdout,
    DryRun,
}

impl Mode {
    pub fn of(args: &FilterArgs) -> Mode {
        if args.dry_run {
            Mode::DryRun
        } else if args.stdout {
            Mode::Stdout
        } else {
            Mode::Reinject
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::parse_args(std::iter::once("pipescan").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn postfix_form_with_dash_recipient() {
        let c = parse(&["-f", "a@b", "--", "-oQ/tmp/x@example.com", "c@d"]);
        assert_eq!(
            c.filter.envelope(),
            Some((
                "a@b".into(),
                vec!["-oQ/tmp/x@example.com".into(), "c@d".into()]
            ))
        );
    }

    #[test]
    fn null_sender_forms() {
        let c = parse(&["-f", "", "--", "c@d"]);
        assert_eq!(
            c.filter.envelope(),
            Some((String::new(), vec!["c@d".into()]))
        );
        let c = parse(&["", "c@d"]);
        assert_eq!(
            c.filter.envelope(),
            Some((String::new(), vec!["c@d".into()]))
        );
    }

    #[test]
    fn positional_form() {
        let c = parse(&["-c", "/x.toml", "a@b", "c@d", "e@f"]);
        assert_eq!(
            c.filter.envelope(),
            Some(("a@b".into(), vec!["c@d".into(), "e@f".into()]))
        );
        assert_eq!(
            c.filter.config.as_deref(),
            Some(std::path::Path::new("/x.toml"))
        );
    }

    #[test]
    fn subcommand_name_after_dashdash_is_an_address() {
        let c = parse(&["-f", "a@b", "--", "check-config"]);
        assert!(c.command.is_none());
        assert_eq!(c.filter.addresses, ["check-config"]);
    }

    #[test]
    fn check_config_subcommand() {
        let c = parse(&["check-config", "-c", "/x.toml"]);
        assert!(matches!(c.command, Some(Command::CheckConfig { .. })));
    }

    #[test]
    fn unknown_option_is_an_error_not_an_exit() {
        assert!(Cli::parse_args(["pipescan", "--bogus", "a", "b"]).is_err());
        // A misspelt option in a master.cf must not become the sender.
        assert!(
            Cli::parse_args([
                "pipescan",
                "--polcy",
                "ORIGINATING",
                "-f",
                "s@x",
                "--",
                "r@y"
            ])
            .is_err()
        );
    }

    #[test]
    fn positional_form_takes_everything_after_the_sender_as_an_address() {
        let c = parse(&[
            "-v",
            "s@x.example",
            "-fattacker@evil.example",
            "--stdout",
            "-v",
        ]);
        assert!(c.filter.verbose && !c.filter.stdout);
        assert_eq!(
            c.filter.envelope(),
            Some((
                "s@x.example".to_string(),
                vec![
                    "-fattacker@evil.example".into(),
                    "--stdout".into(),
                    "-v".into()
                ]
            ))
        );
    }

    /// Admin commands after the options a filter command line has (-c, -v, --policy).
    #[test]
    fn commands_after_global_options() {
        let c = parse(&["-c", "/x.toml", "quarantine", "list", "--since", "7d"]);
        match c.command {
            Some(Command::Quarantine {
                command: QuarantineCommand::List { config, since, .. },
            }) => {
                assert_eq!(config.as_deref(), Some(std::path::Path::new("/x.toml")));
                assert_eq!(since, Some(std::time::Duration::from_secs(7 * 86_400)));
            }
            other => panic!("{other:?}"),
        }
        let c = parse(&[
            "-v",
            "--config=/x.toml",
            "--policy",
            "B",
            "release",
            "-AbCdEf012_x",
            "--to",
            "a@b",
        ]);
        match c.command {
            Some(Command::Release {
                id,
                config,
                policy,
                verbose,
                to,
                ..
            }) => {
                assert_eq!(id, "-AbCdEf012_x");
                assert_eq!(config.as_deref(), Some(std::path::Path::new("/x.toml")));
                assert_eq!(policy.as_deref(), Some("B"));
                assert!(verbose);
                assert_eq!(to, ["a@b"]);
            }
            other => panic!("{other:?}"),
        }
        for args in [
            &["-c", "/x.toml", "check-config"][..],
            &["-vc", "/x.toml", "check-config", "--ping"],
            &["-c/x.toml", "-v", "check-config"],
            &["--policy=ORIGINATING", "-c", "/x.toml", "check-config"],
        ] {
            let c = parse(args);
            match c.command {
                Some(Command::CheckConfig { config, .. }) => {
                    assert_eq!(
                        config.as_deref(),
                        Some(std::path::Path::new("/x.toml")),
                        "{args:?}"
                    )
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
        // Twice is an error, not a silent pick.
        assert!(
            Cli::parse_args([
                "pipescan",
                "-c",
                "/a",
                "release",
                "AbCdEf012_-x",
                "-c",
                "/b"
            ])
            .is_err()
        );
    }

    /// Envelope arguments stay addresses: after --, after -f, and after a positional sender.
    #[test]
    fn command_words_in_the_envelope_are_addresses() {
        for args in [
            &["-f", "s@x", "--", "release"][..],
            &["-c", "/x.toml", "-f", "s@x", "--", "quarantine", "list"],
            &["-f", "s@x", "release"],
            &["-c", "/x.toml", "s@x", "check-config"],
            &["--", "release", "r@y"],
            &["-c", "release", "s@x", "r@y"],
        ] {
            let c = parse(args);
            assert!(c.command.is_none(), "{args:?}");
            assert!(
                command_at(
                    &std::iter::once("pipescan")
                        .chain(args.iter().copied())
                        .collect::<Vec<_>>()
                )
                .is_none(),
                "{args:?}"
            );
        }
        let c = parse(&["-f", "s@x", "--", "release"]);
        assert_eq!(
            c.filter.envelope(),
            Some(("s@x".into(), vec!["release".into()]))
        );
        // The documented corner: a positional sender spelled like a command is the command.
        assert!(matches!(
            parse(&["release", "AbCdEf012_-x"]).command,
            Some(Command::Release { .. })
        ));
    }

    #[test]
    fn since_takes_days() {
        assert_eq!(since("2d"), Ok(std::time::Duration::from_secs(172_800)));
        assert_eq!(since("36h"), Ok(std::time::Duration::from_secs(129_600)));
        assert!(since("d").is_err());
        assert!(since("7days").unwrap_err().contains("ms, s, m, h or d"));
        assert!(since("7").unwrap_err().contains("(ms, s, m, h, d)"));
    }
}
