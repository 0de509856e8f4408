//! Passwords nobody should be allowed to choose: the commonest ones, which every guessing
//! attack tries first and which length alone lets through (`password`, `12345678`).
//!
//! A small built-in list (the top of the public breach-frequency lists), plus any password of
//! one repeated character or of consecutive digits or letters. Used at sign-up and for
//! `ADMIN_PASSWORD` in production; existing accounts still log in with what they have.

/// The commonest passwords of 8 characters or more, lower-case.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "12345678",
    "123456789",
    "1234567890",
    "12341234",
    "11111111",
    "00000000",
    "87654321",
    "123123123",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "qwerty123",
    "qwertyuiop",
    "qwerty12",
    "qwerty1234",
    "qwertyui",
    "asdfghjkl",
    "asdfasdf",
    "zxcvbnm1",
    "iloveyou",
    "iloveyou1",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "welcome123",
    "letmein1",
    "letmein123",
    "admin123",
    "admin1234",
    "administrator",
    "changeme",
    "changeme123",
    "trustno1",
    "whatever",
    "starwars",
    "superman",
    "computer",
    "michelle",
    "jennifer",
    "abcd1234",
    "abc12345",
    "abcdefgh",
    "aa123456",
    "a1b2c3d4",
    "master123",
    "dragon123",
    "monkey123",
    "shadow123",
    "football1",
    "baseball1",
    "internet",
    "samsung1",
    "secret123",
    "default1",
    "test1234",
    "testtest",
    "holdfast",
    "holdfast1",
    "holdfast123",
    "tickets1",
    "ticket123",
];

/// Whether `password` is among the commonest, or one character repeated, or a run of
/// consecutive characters (`12345678`, `abcdefgh`, either way).
pub fn is_common(password: &str) -> bool {
    let lower = password.trim().to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return true;
    }
    let bytes = lower.as_bytes();
    let steps: Vec<i16> = bytes
        .windows(2)
        .map(|w| i16::from(w[1]) - i16::from(w[0]))
        .collect();
    !steps.is_empty()
        && (steps.iter().all(|s| *s == 0)
            || steps.iter().all(|s| *s == 1)
            || steps.iter().all(|s| *s == -1))
}

#[cfg(test)]
mod tests {
    use super::is_common;

    #[test]
    fn the_commonest_passwords_are_recognised() {
        for password in [
            "password",
            "PASSWORD",
            "12345678",
            "123456789",
            "qwertyuiop",
            "aaaaaaaaaaaa",
            "abcdefghij",
            "98765432",
            "Passw0rd",
            " iloveyou ",
        ] {
            assert!(is_common(password), "{password:?}");
        }
        for password in [
            "correct horse battery",
            "kT9#qv2!Lm",
            "holdfast-demo",
            "13572468",
        ] {
            assert!(!is_common(password), "{password:?}");
        }
    }
}
