//! A team library on S3-compatible object storage, against a real S3 server on loopback (moto
//! in server mode, from the throwaway virtualenv `make test` installs; `QUARRY_S3_SERVER_PYTHON`
//! names its interpreter): "machine A" indexes, "machine B" (another local folder) searches and
//! answers, a second writer is refused while the first holds the lease, and a writer killed in
//! the middle of its commits leaves a library that opens and that the next writer finishes.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{json_of, quarry_bin, test_data};

const BUCKET: &str = "team-library";
/// Short, so a killed writer's lease frees within the test.
const LEASE_SECONDS: &str = "6";

fn s3_python(test: &str) -> Option<PathBuf> {
    let named = std::env::var_os("QUARRY_S3_SERVER_PYTHON").map(PathBuf::from);
    let python = named.clone().or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/quarry/venvs/s3/bin/python"))
    })?;
    let usable = Command::new(&python)
        .args(["-c", "import moto.server, boto3"])
        .output()
        .is_ok_and(|o| o.status.success());
    // `make test` names the server it installed: that one must work.
    assert!(
        usable || named.is_none(),
        "QUARRY_S3_SERVER_PYTHON={} cannot run moto's server (`make s3-server`)",
        python.display()
    );
    if usable {
        Some(python)
    } else {
        eprintln!(
            "SKIPPED {test}: no S3 server at {} (`make s3-server` installs moto)",
            python.display()
        );
        None
    }
}

/// moto's S3 server on 127.0.0.1, stopped when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
    python: PathBuf,
}

impl S3Server {
    fn start(python: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server =
            Self { child, endpoint: format!("http://127.0.0.1:{port}"), python: python.into() };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the S3 server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Runs a few lines of boto3 against the server (making buckets, listing keys).
    fn boto(&self, script: &str) -> String {
        let out = Command::new(&self.python)
            .args([
                "-c",
                &format!(
                    "import boto3\ns3 = boto3.client('s3', endpoint_url='{}')\n{script}",
                    self.endpoint
                ),
            ])
            .envs(aws_env(&self.endpoint))
            .output()
            .unwrap();
        assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", "quarry-test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "quarry-test-secret".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
    ]
}

/// One machine: its own cache folder and home, the shared library address and models.
struct Machine {
    cache: tempfile::TempDir,
    home: tempfile::TempDir,
    endpoint: String,
    library: String,
    models: PathBuf,
}

impl Machine {
    fn new(server: &S3Server, library: &str, models: &Path) -> Self {
        Self {
            cache: tempfile::Builder::new().prefix("quarry-machine-").tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
            endpoint: server.endpoint.clone(),
            library: library.to_owned(),
            models: models.to_owned(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(quarry_bin());
        cmd.arg("--data-dir")
            .arg(&self.library)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .arg("--models-dir")
            .arg(&self.models)
            .args(args)
            .env_remove("QUARRY_LOG")
            .env_remove("AWS_PROFILE")
            .env("HOME", self.home.path())
            .env("QUARRY_LEASE_SECONDS", LEASE_SECONDS)
            .envs(aws_env(&self.endpoint));
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

fn write_documents(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("lease.md"),
        "# Lease\n\nThe notice period for terminating the lease is three months.\n\nThe rent is \
         due on the first working day of each month.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("boat.txt"),
        "The sailing boat Kormoran is moored at pier 3 south and measures 11.5 metres.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("mietvertrag.txt"),
        "Die Kaution beträgt drei Monatsmieten und wird auf einem gesonderten Konto angelegt.\n",
    )
    .unwrap();
}

/// Whether the library's writer lease was given up by its last holder.
fn lease_released(server: &S3Server) -> bool {
    let record = server.boto(&format!(
        "print(s3.get_object(Bucket='{BUCKET}', Key='teams/legal/writer.lease')['Body'].read().decode())"
    ));
    let record: serde_json::Value = serde_json::from_str(record.trim()).unwrap();
    record["released"] == true
}

/// `quarry serve` on a machine while another holds the writer lease.
fn serve_read_only(machine: &Machine, docs: &Path) {
    let ui = tempfile::tempdir().unwrap();
    std::fs::write(ui.path().join("index.html"), "<!doctype html><title>Quarry</title>").unwrap();
    let mut server = machine
        .command(&["serve", "--port", "0", "--ui-dir", ui.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    // Kept open while the server runs.
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    let address = line.split("http://127.0.0.1:").nth(1).unwrap_or_else(|| panic!("{line}"));
    let (port, token) = address.trim().split_once("/#token=").unwrap();
    let port: u16 = port.parse().unwrap();
    let (code, body) = match http(port, "GET", "/api/search?q=Kormoran", token, "") {
        Ok(answer) => answer,
        Err(e) => {
            let _ = server.kill();
            let out = server.wait_with_output().unwrap();
            panic!("{e}; the server said: {}", String::from_utf8_lossy(&out.stderr))
        }
    };
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("boat.txt"), "{body}");
    let request = serde_json::json!({ "paths": [docs] }).to_string();
    let (code, body) = http(port, "POST", "/api/index", token, &request).unwrap();
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("open read-only here"), "{body}");
    server.kill().unwrap();
    let stderr = server.wait_with_output().unwrap().stderr;
    assert!(String::from_utf8_lossy(&stderr).contains("opening the library read-only"));
}

/// One HTTP/1.1 request with the server's token; the status code and the body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // The server may reset the connection after its answer (closing with bytes unread):
    // what arrived before that is the answer.
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !bytes.is_empty() => break,
            Err(e) => return Err(format!("{method} {path}: {e}")),
        }
    }
    let response = String::from_utf8_lossy(&bytes).into_owned();
    let code = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((code, body))
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_library_on_s3_is_written_by_one_machine_and_read_by_another() {
    const TEST: &str = "a_library_on_s3_is_written_by_one_machine_and_read_by_another";
    let Some(python) = s3_python(TEST) else { return };
    let Some(data) = test_data(TEST) else { return };
    let models = data.join("models");
    let server = S3Server::start(&python);
    server.boto(&format!("s3.create_bucket(Bucket='{BUCKET}')"));
    let library = format!("s3://{BUCKET}/teams/legal");
    let docs = tempfile::Builder::new().prefix("quarry-docs-").tempdir().unwrap();
    write_documents(docs.path());

    // A bucket that does not exist is named in one line, and nothing is created locally
    // as if it were a folder.
    let machine_a = Machine::new(&server, &library, &models);
    let nowhere = Machine::new(&server, "s3://no-such-bucket/x", &models);
    std::fs::remove_dir(nowhere.cache.path()).unwrap();
    let missing = nowhere.run(&["status", "--json"]);
    assert!(!nowhere.cache.path().exists(), "nothing made on this machine either");
    assert_eq!(missing.status.code(), Some(1), "{}", stderr_of(&missing));
    assert!(
        stderr_of(&missing).contains("the bucket no-such-bucket does not exist"),
        "{}",
        stderr_of(&missing)
    );
    // So are missing credentials (no keys, no profile, no instance metadata to ask).
    let mut no_key = machine_a.command(&["status", "--json"]);
    no_key
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let no_key = no_key.output().unwrap();
    assert_eq!(no_key.status.code(), Some(1), "{}", stderr_of(&no_key));
    assert!(stderr_of(&no_key).contains("no AWS credentials found"), "{}", stderr_of(&no_key));

    // Machine A indexes.
    let report = json_of(&machine_a.run(&["index", "--json", docs.path().to_str().unwrap()]));
    assert_eq!(report["added"], 3, "{report}");
    let keys = server.boto(&format!(
        "print('\\n'.join(o['Key'] for o in s3.list_objects_v2(Bucket='{BUCKET}')['Contents']))"
    ));
    assert!(keys.contains("teams/legal/library.json"), "{keys}");
    assert!(keys.contains("teams/legal/lance/chunks.lance/"), "{keys}");
    assert!(lease_released(&server), "the lease is given up at the end");
    // A reader does not create a library where there is none.
    let elsewhere = Machine::new(&server, &format!("s3://{BUCKET}/teams/typo"), &models);
    let none = elsewhere.run(&["search", "--json", "anything"]);
    assert_eq!(none.status.code(), Some(1), "{}", stderr_of(&none));
    assert!(stderr_of(&none).contains("no library at s3://team-library/teams/typo yet"));
    assert!(!machine_a.cache.path().join("lance").exists(), "tables stay on S3");

    // Machine B, with an empty folder of its own, searches (both retrievers) and answers.
    let machine_b = Machine::new(&server, &library, &models);
    let status = json_of(&machine_b.run(&["status", "--json"]));
    assert_eq!(status["data_dir"], library.as_str(), "{status}");
    assert_eq!(status["indexed"], 3, "{status}");
    let found = json_of(&machine_b.run(&["search", "--json", "how long is the notice period"]));
    let hits = found["hits"].as_array().unwrap();
    assert!(hits[0]["doc_path"].as_str().unwrap().ends_with("lease.md"), "{found}");
    let retrievers = hits[0]["retrievers"].to_string();
    assert!(retrievers.contains("vector") && retrievers.contains("text"), "{retrievers}");
    assert!(machine_b.cache.path().join("text").is_dir(), "B keeps its own text index");
    let german = json_of(&machine_b.run(&["search", "--json", "Kaution Monatsmieten"]));
    assert!(german["hits"][0]["doc_path"].as_str().unwrap().ends_with("mietvertrag.txt"));
    let answer =
        json_of(&machine_b.run(&["ask", "--evidence", "--json", "What is the notice period?"]));
    assert_eq!(answer["abstained"], false, "{answer}");
    assert!(answer["answer"].as_str().unwrap().contains("three months"), "{answer}");
    assert!(answer["citations"][0]["doc_path"].as_str().unwrap().ends_with("lease.md"));

    // A writes more; B's text index is behind and catches up when B next opens the library.
    std::fs::write(
        docs.path().join("garden.txt"),
        "The allotment garden association meets on the second Tuesday of every month.\n",
    )
    .unwrap();
    let report = json_of(&machine_a.run(&["index", "--json", docs.path().to_str().unwrap()]));
    assert_eq!(report["added"], 1, "{report}");
    let found =
        json_of(&machine_b.run(&["search", "--json", "--mode", "text", "allotment Tuesday"]));
    assert!(
        found["hits"][0]["doc_path"].as_str().is_some_and(|p| p.ends_with("garden.txt")),
        "{found}"
    );

    // While A watches the folder (and so holds the writer lease), B may not write.
    let watcher = machine_a
        .command(&["index", "--watch", docs.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lease_taken = Instant::now() + Duration::from_secs(60);
    loop {
        let keys = server.boto(&format!(
            "print('\\n'.join(o['Key'] for o in s3.list_objects_v2(Bucket='{BUCKET}')['Contents']))"
        ));
        if keys.contains("teams/legal/writer.lease") && !lease_released(&server) {
            break;
        }
        assert!(Instant::now() < lease_taken, "the watching writer never took the lease");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Renewed past its first term: B is still refused after the lease would have expired.
    std::thread::sleep(Duration::from_secs(8));
    let refused = machine_b.run(&["index", "--json", docs.path().to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr_of(&refused));
    let message = stderr_of(&refused);
    assert!(message.contains("another Quarry process") && message.contains(&library), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "one clear line: {message}");
    // Reading goes on meanwhile, and B's `serve` opens the library read-only: it searches,
    // and refuses to add documents with the reason.
    json_of(&machine_b.run(&["search", "--json", "Kormoran"]));
    serve_read_only(&machine_b, docs.path());
    // Ctrl-C ends the watch, and the lease is given up on the way out.
    let interrupted =
        Command::new("kill").args(["-INT", &watcher.id().to_string()]).status().unwrap();
    assert!(interrupted.success());
    let exited = watcher.wait_with_output().unwrap();
    assert!(exited.status.code().is_some(), "{}", stderr_of(&exited));
    assert!(lease_released(&server), "Ctrl-C gives the lease up");

    // A writer killed in the middle of a large run: the library opens at once for readers,
    // the dead writer's lease blocks writers until it expires, then the next writer finishes.
    let many = tempfile::Builder::new().prefix("quarry-many-").tempdir().unwrap();
    for idx in 0..150 {
        std::fs::write(
            many.path().join(format!("note{idx:03}.txt")),
            format!("Note number {idx} carries the marker word zq{idx}x and nothing else."),
        )
        .unwrap();
    }
    let mut writer = machine_a
        .command(&["index", "--workers", "1", many.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reported = 0;
    for line in BufReader::new(writer.stdout.take().unwrap()).lines() {
        if line.unwrap().starts_with("indexed") {
            reported += 1;
            // Reported once the first batch of 64 is committed; the next one is under way.
            if reported >= 64 {
                break;
            }
        }
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    let killed = Instant::now();
    let early = machine_b.run(&["index", "--json", many.path().to_str().unwrap()]);
    assert_eq!(early.status.code(), Some(1), "{}", stderr_of(&early));
    assert!(stderr_of(&early).contains("lease expires within"), "{}", stderr_of(&early));
    let status = json_of(&machine_b.run(&["status", "--json"]));
    let settled = status["indexed"].as_u64().unwrap() + status["pending"].as_u64().unwrap();
    assert_eq!(status["documents"].as_u64().unwrap(), settled, "{status}");
    assert!(status["indexed"].as_u64().unwrap() >= 4 + 64, "{status}");
    json_of(&machine_b.run(&["search", "--json", "zq3x"]));
    std::thread::sleep(Duration::from_secs(7).saturating_sub(killed.elapsed()));
    let report = json_of(&machine_b.run(&["index", "--json", many.path().to_str().unwrap()]));
    assert_eq!(report["failed"], 0, "{report}");
    let status = json_of(&machine_b.run(&["status", "--json"]));
    assert_eq!(status["indexed"], 154, "{status}");
    assert_eq!(status["pending"], 0, "{status}");
    assert_eq!(status["chunks"], status["text_index_chunks"], "{status}");
    // A source folder that is not on the machine re-scanning (another machine's folder, an
    // unplugged drive) keeps its documents; only files gone from a folder that is there count.
    let moved = many.path().with_extension("elsewhere");
    std::fs::rename(many.path(), &moved).unwrap();
    std::fs::remove_file(docs.path().join("garden.txt")).unwrap();
    let rescan = json_of(&machine_b.run(&["index", "--json"]));
    assert_eq!(rescan["removed"], 1, "{rescan}");
    let passed_over = rescan["passed_over"].to_string();
    assert!(passed_over.contains("not found on this machine"), "{rescan}");
    let status = json_of(&machine_b.run(&["status", "--json"]));
    assert_eq!(status["indexed"], 153, "{status}");
    std::fs::rename(&moved, many.path()).unwrap();
    // Machine A's text index is now behind B's writes and catches up too.
    let found = json_of(&machine_a.run(&["search", "--json", "--mode", "text", "zq149x"]));
    assert!(
        found["hits"][0]["doc_path"].as_str().is_some_and(|p| p.ends_with("note149.txt")),
        "{found}"
    );
}

#[test]
fn malformed_and_unsupported_library_addresses_are_refused_naming_them() {
    for (address, expected) in [
        ("gs://bucket/x", "not on gs://"),
        ("s3://", "expected s3://bucket"),
        ("s3://bucket//x", "expected s3://bucket"),
    ] {
        let out = Command::new(quarry_bin())
            .args(["--data-dir", address, "status", "--json"])
            .env_remove("QUARRY_LOG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{address}: {}", stderr_of(&out));
        let message = stderr_of(&out);
        assert!(
            message.contains(address.trim_end_matches('/')) && message.contains(expected),
            "{message}"
        );
    }
}
