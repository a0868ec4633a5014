//! Helpers that run the real `regard` binary.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const WRITE_KEY: &str = "cli-test-write-key";
pub const ADMIN_KEY: &str = "cli-test-admin-key";

/// A `regard serve` child process.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn regard() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_regard"));
    command.env("REGARD_WRITE_KEY", WRITE_KEY).env("REGARD_ADMIN_KEY", ADMIN_KEY).env("REGARD_LOG", "warn");
    command
}

/// Starts `regard serve` on a free port over `data` and waits until it listens.
pub fn start_server(data: &Path, extra: &[&str]) -> Server {
    let mut command = regard();
    command.args(["serve", "--listen", "127.0.0.1:0", "--data"]).arg(data).args(extra);
    spawn_server(command)
}

/// Spawns a prepared `regard serve` command (it must listen on a port of its choosing) and waits
/// until it prints the address it listens on.
pub fn spawn_server(mut command: Command) -> Server {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn regard serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Regard is listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(60)).expect("server did not start listening");
    Server { child, base }
}

/// Waits for a child to exit, for at most `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// messageId → number of stored copies, read straight from the database file.
pub fn stored_message_ids(data: &Path) -> std::collections::HashMap<String, u32> {
    let connection =
        rusqlite::Connection::open_with_flags(data.join("regard.sqlite3"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open database");
    let mut select =
        connection.prepare("SELECT message_id, count(*) FROM events GROUP BY message_id").expect("prepare");
    let rows = select.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?))).expect("query");
    rows.map(|r| r.expect("row")).collect()
}
