//! `sipcheck FILE...` — judge SIP messages the way ringsip does on receipt.
//!
//! One line per file, in order: `<file>\tvalid`, `<file>\tinvalid\t<reason>`, or
//! `<file>\terror\t<why>` when the file cannot be read. `-` reads one message from stdin.
//! Each file is one UDP datagram: framed by Content-Length (octets after the body are
//! ignored), every known header fully parsed, and the checks a proxy runs before acting
//! (RFC 3261 §16.3). Exit status: 0 when every file was judged (whatever the verdicts),
//! 1 when a file could not be read, 2 on a usage error.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ringsip_proto::Message;

#[derive(Parser)]
#[command(name = "sipcheck", version, about = "Judge SIP messages the way ringsip does on receipt")]
struct Args {
    /// Files holding one SIP message each; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// The verdict for one message.
fn judge(bytes: &[u8]) -> Result<(), ringsip_proto::Error> {
    let msg = Message::parse(bytes)?;
    msg.validate()
}

fn read(path: &PathBuf) -> io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        io::stdin().lock().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path)
    }
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut unreadable = false;
    for path in &args.files {
        let name = path.display();
        let line = match read(path) {
            Ok(bytes) => match judge(&bytes) {
                Ok(()) => format!("{name}\tvalid"),
                Err(e) => format!("{name}\tinvalid\t{e}"),
            },
            Err(e) => {
                unreadable = true;
                format!("{name}\terror\t{e}")
            }
        };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(1);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(1);
    }
    if unreadable { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
