//! `regard token`: signs with the secret in `keys.json`, adding one to a file from before user
//! tokens (keeping its keys), and refuses to invent keys for a data dir that has none.

use std::path::Path;
use std::process::{Command, Output};

fn regard_token(data: &Path, user: &str, secret_env: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_regard"));
    command
        .args(["token", "--user", user, "--ttl-seconds", "600", "--data"])
        .arg(data)
        .env_remove("REGARD_WRITE_KEY")
        .env_remove("REGARD_ADMIN_KEY")
        .env_remove("REGARD_USER_TOKEN_SECRET");
    if let Some(secret) = secret_env {
        command.env("REGARD_USER_TOKEN_SECRET", secret);
    }
    command.output().expect("run regard token")
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

#[test]
fn an_old_keys_file_gets_a_secret_and_the_token_verifies_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_path = dir.path().join("keys.json");
    std::fs::write(&keys_path, r#"{"write_key": "wk_old", "admin_key": "ak_old"}"#).expect("write keys");

    let output = regard_token(dir.path(), "user-00784", None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).expect("text").trim().to_owned();
    assert!(token.starts_with("v1.") && !token.contains('\n'), "only the token on standard output: {token}");

    let keys: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&keys_path).expect("read keys")).expect("keys.json is JSON");
    assert_eq!((keys["write_key"].as_str(), keys["admin_key"].as_str()), (Some("wk_old"), Some("ak_old")));
    let secret = keys["user_token_secret"].as_str().expect("a secret was added");
    assert!(secret.starts_with("uts_") && secret.len() > 40, "{secret}");
    assert_eq!(regard_server::user_token::verify(secret, &token, "user-00784", now_secs()), Ok(()));
    assert_eq!(
        regard_server::user_token::verify(secret, &token, "user-00784", now_secs() + 601),
        Err(regard_server::user_token::TokenError::Expired)
    );

    // The secret is kept from then on: a second token verifies with the same one.
    let again = regard_token(dir.path(), "someone-else", None);
    let token = String::from_utf8(again.stdout).expect("text").trim().to_owned();
    assert_eq!(regard_server::user_token::verify(secret, &token, "someone-else", now_secs()), Ok(()));
}

#[test]
fn the_environment_secret_wins_and_must_be_long_enough() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "an-operator-chosen-secret";
    let output = regard_token(dir.path(), "alice", Some(secret));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).expect("text").trim().to_owned();
    assert_eq!(regard_server::user_token::verify(secret, &token, "alice", now_secs()), Ok(()));

    let output = regard_token(dir.path(), "alice", Some("short"));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 16 characters"));
}

#[test]
fn a_data_dir_without_keys_is_refused_rather_than_given_new_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = regard_token(dir.path(), "alice", None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("regard serve"), "{output:?}");
    assert!(!dir.path().join("keys.json").exists());
}
