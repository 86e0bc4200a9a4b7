//! e-Meterai serial numbers: 22 characters of Crockford base32, 21 random
//! (105 bits from the operating system's CSPRNG) and one Luhn mod 32 check
//! character, so a mistyped serial is rejected before any database read.
//! Uniqueness is enforced where the serial is stored, by a conditional put.

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
pub const SERIAL_LEN: usize = 22;

/// A well-formed serial number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(String);

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|a| *a == c).map(|p| p as u32)
}

/// Luhn mod 32 over the payload: catches every single-character error and
/// almost every swap of neighbours.
fn check_char(payload: &[u8]) -> u8 {
    let mut sum = 0u32;
    let mut factor = 2u32;
    for &c in payload.iter().rev() {
        let addend = factor * value(c).expect("payload is in the alphabet");
        sum += addend / 32 + addend % 32;
        factor = if factor == 2 { 1 } else { 2 };
    }
    ALPHABET[((32 - sum % 32) % 32) as usize]
}

impl Serial {
    /// A new random serial.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 14]; // 112 random bits; 105 are used
        getrandom::fill(&mut bytes).expect("the operating system's CSPRNG is available");
        let mut bits: u128 = 0;
        for b in bytes {
            bits = (bits << 8) | u128::from(b);
        }
        let mut payload = Vec::with_capacity(SERIAL_LEN);
        for i in 0..SERIAL_LEN - 1 {
            payload.push(ALPHABET[((bits >> (5 * i)) & 31) as usize]);
        }
        let check = check_char(&payload);
        payload.push(check);
        Serial(String::from_utf8(payload).expect("alphabet is ASCII"))
    }

    /// Validates a serial typed or scanned by someone: length, alphabet
    /// (case-insensitive; Crockford's O/I/L read as 0/1/1) and check character.
    pub fn parse(raw: &str) -> Option<Self> {
        let normalized: Vec<u8> = raw
            .trim()
            .bytes()
            .map(|b| match b.to_ascii_uppercase() {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                other => other,
            })
            .collect();
        if normalized.len() != SERIAL_LEN || !normalized.iter().all(|c| value(*c).is_some()) {
            return None;
        }
        let (payload, check) = normalized.split_at(SERIAL_LEN - 1);
        (check_char(payload) == check[0])
            .then(|| Serial(String::from_utf8(normalized).expect("ASCII")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A serial's public record, once it is bound to a stamped file. No
/// personal data: no account, no job.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct SerialRecord {
    pub serial: String,
    pub valid: bool,
    pub stamped_at: String,
    /// The SHA-256 of the stamped file, as stored.
    pub sha256: String,
    pub page: u32,
    pub channel: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_serials_are_well_formed_and_distinct() {
        let serials: HashSet<Serial> = (0..10_000).map(|_| Serial::generate()).collect();
        assert_eq!(serials.len(), 10_000);
        for serial in serials.iter().take(100) {
            assert_eq!(serial.as_str().len(), SERIAL_LEN);
            assert_eq!(Serial::parse(serial.as_str()).as_ref(), Some(serial));
        }
    }

    #[test]
    fn every_single_character_typo_is_caught() {
        let serial = Serial::generate();
        let bytes = serial.as_str().as_bytes();
        for i in 0..SERIAL_LEN {
            for &c in ALPHABET {
                if c == bytes[i] {
                    continue;
                }
                let mut typo = bytes.to_vec();
                typo[i] = c;
                let typo = String::from_utf8(typo).unwrap();
                assert!(Serial::parse(&typo).is_none(), "{typo} passed for {serial}");
            }
        }
    }

    #[test]
    fn lowercase_and_lookalikes_are_read_kindly() {
        let serial = Serial::generate();
        assert_eq!(
            Serial::parse(&serial.as_str().to_lowercase()),
            Some(serial.clone())
        );
        assert_eq!(Serial::parse(&format!(" {serial} ")), Some(serial));
    }

    #[test]
    fn wrong_length_or_alphabet_is_rejected() {
        assert!(Serial::parse("").is_none());
        assert!(Serial::parse("ABC").is_none());
        assert!(Serial::parse(&"U".repeat(SERIAL_LEN)).is_none());
        assert!(Serial::parse(&"0".repeat(SERIAL_LEN + 1)).is_none());
    }
}
