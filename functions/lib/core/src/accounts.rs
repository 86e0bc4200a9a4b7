//! Portal accounts: who may sign up and how they are named. A user signs up
//! with an e-mail address or an Indonesian mobile number; both are written
//! many ways (`Budi@Mail.com`, `0812-3456-7890`, `+62 812 3456 7890`) and
//! each must name one account.

use crate::error::{codes, Error, Result};

/// A sign-in name, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Username {
    /// Lower-cased.
    Email(String),
    /// E.164: `+62` and 9 to 12 digits, the first an 8 (a mobile number).
    Phone(String),
}

impl Username {
    /// Reads what a user typed as their e-mail address or mobile number.
    pub fn parse(raw: &str) -> Result<Self> {
        let raw = raw.trim();
        let invalid = || {
            Error::invalid(
                codes::INVALID_USERNAME,
                "enter an e-mail address or an Indonesian mobile number (08… or +62…)",
            )
        };
        if raw.is_empty() || raw.len() > 254 {
            return Err(invalid());
        }
        if raw.contains('@') {
            let email = raw.to_lowercase();
            let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
            let fine = !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && email
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '<' && c != '>' && c != '"');
            return if fine {
                Ok(Username::Email(email))
            } else {
                Err(invalid())
            };
        }
        let compact: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let national = compact
            .strip_prefix("+62")
            .or_else(|| compact.strip_prefix("62"))
            .or_else(|| compact.strip_prefix('0'))
            .ok_or_else(invalid)?;
        let fine = national.starts_with('8')
            && (9..=12).contains(&national.len())
            && national.bytes().all(|b| b.is_ascii_digit());
        if fine {
            Ok(Username::Phone(format!("+62{national}")))
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Username::Email(s) | Username::Phone(s) => s,
        }
    }
}

/// The pool's password policy, checked before asking it (so the user hears
/// what is wrong in their language, not the pool's English).
pub fn check_password(password: &str) -> Result<()> {
    // The pool's bounds, in characters (not bytes: "é" is one).
    let length = password.chars().count();
    let long_enough = (8..=256).contains(&length);
    let has = |f: fn(char) -> bool| password.chars().any(f);
    if long_enough && has(|c| c.is_lowercase()) && has(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::invalid(
            codes::WEAK_PASSWORD,
            "a password has 8 to 256 characters, with a small letter and a digit",
        ))
    }
}

/// A confirmation or reset code as the pool sends it: six digits.
pub fn check_code(code: &str) -> Result<&str> {
    let code = code.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code)
    } else {
        Err(Error::invalid(
            codes::WRONG_CODE,
            "the code is the six digits we sent",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_person_one_name_however_it_is_typed() {
        for typed in [
            "0812-3456-7890",
            "+62 812 3456 7890",
            "6281234567890",
            " 081234567890 ",
        ] {
            assert_eq!(
                Username::parse(typed).unwrap(),
                Username::Phone("+6281234567890".into()),
                "{typed}"
            );
        }
        assert_eq!(
            Username::parse("Budi.Santoso@Mail.CO.id").unwrap(),
            Username::Email("budi.santoso@mail.co.id".into())
        );
        for bad in [
            "",
            "budi",
            "@mail.com",
            "budi@",
            "budi@mail",
            "0212345678",
            "+1 555 0100",
            "08123",
            "0812345678901234",
            "<a@b.c>",
            "08abc",
        ] {
            assert_eq!(
                Username::parse(bad).unwrap_err().code(),
                codes::INVALID_USERNAME,
                "{bad}"
            );
        }
    }

    #[test]
    fn passwords_and_codes() {
        assert!(check_password("Meterai-2026").is_ok());
        for weak in ["short1a", "ALLUPPER1", "NoDigitsHere"] {
            assert_eq!(
                check_password(weak).unwrap_err().code(),
                codes::WEAK_PASSWORD
            );
        }
        // Bounds in characters: 200 two-byte letters are a long password,
        // 257 characters of any kind too many.
        assert!(check_password(&format!("a1{}", "é".repeat(200))).is_ok());
        assert!(check_password(&format!("a1{}", "😀".repeat(254))).is_ok());
        assert!(check_password(&format!("a1{}", "b".repeat(255))).is_err());
        assert_eq!(check_code(" 123456 ").unwrap(), "123456");
        assert!(check_code("12345").is_err() && check_code("12a456").is_err());
    }
}
