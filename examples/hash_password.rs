//! Prints a password file line: `cargo run --example hash_password -- USER PASSWORD`.
//! (`starling passwd --file FILE USER` does the same and edits the file in place.)

use starling::auth::password::{PasswordHash, DEFAULT_ITERATIONS};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(user), Some(password)) = (args.next(), args.next()) else {
        eprintln!("usage: hash_password USER PASSWORD");
        std::process::exit(2);
    };
    let hash = PasswordHash::new(password.as_bytes(), DEFAULT_ITERATIONS);
    println!("{user}:{hash}");
}
