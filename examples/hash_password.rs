//! Prints a password file line: `cargo run --example hash_password -- USER PASSWORD`
//! writes an Argon2id hash; with `--scram` first, a pbkdf2-sha256 one, which a user who
//! logs in with SCRAM-SHA-256 needs. (`starling passwd --file FILE USER` does the same
//! and edits the file in place.)

use starling::auth::password::{PasswordHash, DEFAULT_ITERATIONS};
use starling::auth::stored::StoredPassword;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let scram = args.first().is_some_and(|a| a == "--scram");
    if scram {
        args.remove(0);
    }
    let [user, password] = &args[..] else {
        eprintln!("usage: hash_password [--scram] USER PASSWORD");
        std::process::exit(2);
    };
    let hash = match scram {
        true => PasswordHash::new(password.as_bytes(), DEFAULT_ITERATIONS).into(),
        false => StoredPassword::argon2id(password.as_bytes()),
    };
    println!("{user}:{hash}");
}
