//! Messages the scanner unit tests send to the real spamd, rspamd and clamd, and the fault
//! server they use to misbehave (refuse, hang, garbage, close mid-reply).

use super::wire::ServerAddr;
use std::net::{TcpListener, TcpStream};
use std::thread;

/// A GTUBE message; the GTUBE string is assembled at run time so that this source file
/// is not itself "spam".
pub fn gtube() -> Vec<u8> {
    let (head, tail) = (
        "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD",
        "-ANTI-UBE-TEST-EMAIL*C.34X",
    );
    format!(
        "From: Sender <sender@example.com>\r\nTo: rcpt@example.org\r\n\
         Subject: Test spam mail (GTUBE)\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <gtube-live@example.com>\r\n\r\n{head}{tail}\r\n"
    )
    .into_bytes()
}

/// A 10 KB ham message with the fields a real one has.
pub fn ham_10k() -> Vec<u8> {
    let mut msg =
        b"From: Alice Example <alice@example.com>\r\nTo: Bob Example <bob@example.org>\r\n\
        Subject: Minutes of the Thursday meeting\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
        Message-ID: <ham-live@example.com>\r\nMIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=us-ascii\r\n\r\nHi Bob,\r\n\r\n"
            .to_vec();
    let mut n = 0;
    while msg.len() < 10_000 {
        n += 1;
        msg.extend_from_slice(
            format!("Item {n}: we went through the budget for the garden project and agreed on the next steps.\r\n")
                .as_bytes(),
        );
    }
    msg.extend_from_slice(b"\r\nAlice\r\n");
    msg
}

/// The 68-byte EICAR test file, kept as hex so that this source file is not itself a test virus
/// for whatever scanner looks at the repository.
const EICAR_HEX: &str = "58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d\
    5354414e444152442d414e544956495255532d544553542d46494c452124482b482a";

pub fn eicar() -> Vec<u8> {
    (0..EICAR_HEX.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&EICAR_HEX[i..i + 2], 16).ok())
        .collect()
}

/// A fake server on 127.0.0.1:0, for fault injection only: accepts one connection and hands it
/// to `serve`.
pub fn fault_server(
    serve: impl FnOnce(TcpStream) + Send + 'static,
) -> (ServerAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = ServerAddr::Tcp(listener.local_addr().expect("addr").to_string());
    let handle = thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            serve(stream);
        }
    });
    (addr, handle)
}

/// The address of a server of the real stack, from `var` (printed by `scripts/mailstack env`);
/// fails, it does not skip, when the stack's environment is missing.
pub fn stack_server(var: &str) -> ServerAddr {
    let Ok(addr) = std::env::var(var) else {
        panic!(
            "{var} is not set: start the real servers with MAILSTACK_RSPAMD=1 scripts/mailstack up DIR, then `set -a; eval \"$(scripts/mailstack env DIR)\"; set +a` (scripts/test does this)"
        );
    };
    addr.parse().unwrap_or_else(|e| panic!("{var}: {e}"))
}
