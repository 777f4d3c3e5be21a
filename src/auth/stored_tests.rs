//! Hash schemes: lines written by mosquitto_passwd 2.0.11 (known vectors), Argon2id
//! round trips, refusals, decoys.

use super::*;

/// `mosquitto_passwd -b FILE alice wonder` (PBKDF2-SHA512, default 101 iterations).
const MOSQ_PBKDF2: &str = "$7$101$VNXoaMSBWSAiCPi6$jvVMgvlY43xtQwaxDcZy2KzJfmbRx8Y7yo7oovLdkOS5D5v7toRUNIJYFSt26F1Kgp49GcL+wF79HoAruKJKQQ==";
/// `mosquitto_passwd -H sha512-pbkdf2 -I 1000 -b FILE carol c4rol`.
const MOSQ_PBKDF2_1000: &str = "$7$1000$J85Yj5VncD/S6gEQ$Ks81x/A+vetw5WxjG/xuqYqVIhVxFEGvjrkHR3ryC2GZb8GnODtUzu/JlCsvU+mF+bVhmrKv1fyX4Nfy6srz6g==";
/// `mosquitto_passwd -H sha512 -b FILE bob builder`.
const MOSQ_SHA512: &str = "$6$uIH21A7icU6j1mnc$opRo8FQ/K0pnycG3ddIUucopnYy6mHBdvAUOMnrdHxDzlEqAJJqiFNignfLWwF1PHOzYdFw0uJAA/Z3XGwOPWw==";

#[test]
fn mosquitto_passwd_lines_verify() {
    for (line, password, scheme) in [
        (MOSQ_PBKDF2, "wonder", "pbkdf2-sha512"),
        (MOSQ_PBKDF2_1000, "c4rol", "pbkdf2-sha512"),
        (MOSQ_SHA512, "builder", "sha512"),
    ] {
        let stored = StoredPassword::parse(line).unwrap();
        assert_eq!(stored.scheme(), scheme);
        assert!(stored.verify(password.as_bytes()), "{line}");
        assert!(!stored.verify(b"wrong"), "{line}");
        assert!(!stored.verify(b""), "{line}");
        assert!(stored.scram().is_none());
        // Written back exactly as read.
        assert_eq!(stored.to_string(), line);
    }
    let StoredPassword::Pbkdf2Sha512 {
        iterations, salt, ..
    } = StoredPassword::parse(MOSQ_PBKDF2).unwrap()
    else {
        panic!("not $7$");
    };
    assert_eq!((iterations, salt.len()), (101, 12));
}

#[test]
fn mosquitto_padding_is_optional() {
    let bare = MOSQ_SHA512.trim_end_matches('=');
    assert!(StoredPassword::parse(bare).unwrap().verify(b"builder"));
}

#[test]
fn argon2id_round_trips() {
    let stored = StoredPassword::argon2id(b"pass word");
    let text = stored.to_string();
    assert!(
        text.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{text}"
    );
    let back = StoredPassword::parse(&text).unwrap();
    assert_eq!(back, stored);
    assert!(back.verify(b"pass word"));
    assert!(!back.verify(b"pass Word"));
    assert!(back.scram().is_none());
    // Same password, fresh salt: another string.
    assert_ne!(StoredPassword::argon2id(b"pass word"), stored);
}

#[test]
fn pbkdf2_sha256_lines_still_parse_and_serve_scram() {
    let h = PasswordHash::with_salt(b"pencil", b"salt".to_vec(), 4096);
    let stored = StoredPassword::parse(&h.to_string()).unwrap();
    assert_eq!(stored.scram(), Some(&h));
    assert!(stored.verify(b"pencil"));
}

#[test]
fn refuses_malformed_hashes() {
    for bad in [
        "plain",
        "$5$abc$def",
        "$7$0$VNXoaMSBWSAiCPi6$AAAA",
        "$7$x$VNXoaMSBWSAiCPi6$AAAA",
        "$7$101$!!$AAAA",
        "$7$101$VNXoaMSBWSAiCPi6$AAAA",
        "$6$uIH21A7icU6j1mnc$AAAA",
        "$6$$opRo8FQ/K0pnycG3ddIUucopnYy6mHBdvAUOMnrdHxDzlEqAJJqiFNignfLWwF1PHOzYdFw0uJAA/Z3XGwOPWw==",
        "$6$uIH21A7icU6j1mnc$opRo8FQ/K0pnycG3ddIUucopnYy6mHBdvAUOMnrdHxDzlEqAJJqiFNignfLWwF1PHOzYdFw0uJAA/Z3XGwOPWw==$x",
        "$argon2id$v=19$m=19456,t=2,p=1",
        "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
    ] {
        assert!(StoredPassword::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn decoys_keep_scheme_and_cost_and_match_nothing() {
    let argon = StoredPassword::argon2id(b"x");
    for stored in [
        StoredPassword::parse(MOSQ_PBKDF2).unwrap(),
        StoredPassword::parse(MOSQ_SHA512).unwrap(),
        PasswordHash::with_salt(b"x", b"s".to_vec(), 1000).into(),
        argon.clone(),
    ] {
        let decoy = stored.decoy();
        assert_eq!(decoy.scheme(), stored.scheme());
        assert!(!decoy.verify(b"x"));
        assert!(!decoy.verify(b""));
    }
    let StoredPassword::Pbkdf2Sha512 { iterations, .. } =
        StoredPassword::parse(MOSQ_PBKDF2).unwrap().decoy()
    else {
        panic!("not $7$");
    };
    assert_eq!(iterations, 101);
    let params = |s: &StoredPassword| s.to_string().split('$').nth(3).map(str::to_owned);
    assert_eq!(params(&argon.decoy()), params(&argon));
}
