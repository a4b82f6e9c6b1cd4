//! Debian's document programs (poppler's `pdftoppm`, Tesseract, qpdf) run from the extraction
//! worker: input on stdin, output from stdout, each run stopped at a time limit so a program
//! that hangs costs that step only.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` with `input` on its stdin, returning its stdout; stopped after `limit`.
/// Exit codes in `ok` count as success (qpdf's 3: done, with warnings).
pub(super) fn run(
    mut command: Command,
    input: Option<&[u8]>,
    limit: Duration,
    name: &str,
    ok: &[i32],
) -> Result<Vec<u8>, String> {
    let mut child = command
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "{name} is not installed (Debian: apt install tesseract-ocr tesseract-ocr-deu poppler-utils qpdf)"
            ),
            _ => format!("cannot start {name}: {e}"),
        })?;
    let writer = match (input, child.stdin.take()) {
        (Some(bytes), Some(mut stdin)) => {
            let bytes = bytes.to_vec();
            Some(std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            }))
        }
        _ => None,
    };
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let errors = std::thread::spawn(move || {
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        err
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{name} took longer than {} s and was stopped",
                    limit.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{name}: {e}")),
        }
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let out = reader.join().unwrap_or_default();
    let err = errors.join().unwrap_or_default();
    if !status.code().is_some_and(|code| ok.contains(&code)) {
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        return Err(format!(
            "{name} failed ({status}){}",
            if last.is_empty() { String::new() } else { format!(": {last}") }
        ));
    }
    Ok(out)
}
