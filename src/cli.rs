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
pipescan check-config [-c FILE]\n  pipescan release ID [--to ADDRESS]... [--format resend|attach]\n  \
pipescan quarantine list [--since DURATION] [--category C]\n\nSee pipescan(1) and pipescan.toml(5).",
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
        format: crate::admin::Format,
        /// Configuration file [default: /etc/pipescan/pipescan.toml]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
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
        /// Only messages quarantined within this time, e.g. 24h, 7d is written 168h
        #[arg(long, value_name = "DURATION")]
        since: Option<crate::config::Dur>,
        /// Only this category (virus, banned, spam, badh, unchecked)
        #[arg(long, value_name = "CATEGORY")]
        category: Option<String>,
        /// Configuration file [default: /etc/pipescan/pipescan.toml]
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
    },
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
}
