//! OEM code pages for FAT short names: 437 (the default) and 850.
//!
//! A FAT 8.3 name is bytes in the code page of the DOS or Windows that
//! wrote it; bytes from 0x80 up (`é`, `ü`, `ø` ...) mean different
//! letters in different code pages. mtools, DOS and Windows write them,
//! so a volume's short names are decoded with a chosen page, 437 unless
//! told otherwise, as Linux's vfat does. Long (VFAT) names are UTF-16 and
//! need none of this.
//!
//! The tables are the high halves (0x80 to 0xFF) of the pages as Unicode
//! publishes them (and Python's `cp437` and `cp850` codecs decode them);
//! the low halves are ASCII.

use core::fmt;
use core::str::FromStr;

/// The code pages known here, by number.
pub const SUPPORTED: [u16; 2] = [437, 850];

/// An OEM code page: how the bytes of a FAT short name become characters
/// and back. Given to `fatfs` as its `OemCpConverter`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CodePage {
    number: u16,
    /// Characters of bytes 0x80 to 0xFF, all distinct and none ASCII.
    high: &'static [char; 128],
}

impl CodePage {
    /// Code page 437, the original IBM PC's: the default.
    pub const CP437: CodePage = CodePage { number: 437, high: &CP437 };
    /// Code page 850, DOS's "Multilingual (Latin-1)".
    pub const CP850: CodePage = CodePage { number: 850, high: &CP850 };

    /// The code page numbered `number`, if it is one of [`SUPPORTED`].
    pub fn new(number: u16) -> Option<CodePage> {
        [CodePage::CP437, CodePage::CP850].into_iter().find(|c| c.number == number)
    }

    /// The page's number (437, 850).
    pub fn number(self) -> u16 {
        self.number
    }

    /// The character of byte `b`.
    pub fn decode(self, b: u8) -> char {
        match b.checked_sub(0x80) {
            None => char::from(b),
            Some(i) => self.high[usize::from(i)],
        }
    }

    /// The byte of character `c`, or `None` if the page has no such
    /// character. Exact: `encode(decode(b)) == Some(b)` for every byte.
    pub fn encode(self, c: char) -> Option<u8> {
        if c.is_ascii() {
            return Some(c as u8); // in range: ASCII is below 0x80
        }
        self.high.iter().position(|&h| h == c).map(|i| 0x80 + i as u8) // i < 128
    }
}

impl Default for CodePage {
    fn default() -> Self {
        CodePage::CP437
    }
}

impl fmt::Debug for CodePage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodePage({})", self.number)
    }
}

/// The number alone (`437`), as [`FromStr`] reads it back.
impl fmt::Display for CodePage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number)
    }
}

/// A code page asked for by a name this crate does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownCodePage(pub alloc::string::String);

impl fmt::Display for UnknownCodePage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown code page `{}`: supported are 437 (the default) and 850", self.0)
    }
}

impl core::error::Error for UnknownCodePage {}

/// Reads `437`, `cp437` or `CP437` (and the same for 850).
impl FromStr for CodePage {
    type Err = UnknownCodePage;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = match s.get(..2) {
            Some(p) if p.eq_ignore_ascii_case("cp") => &s[2..],
            _ => s,
        };
        digits.parse().ok().and_then(CodePage::new).ok_or_else(|| UnknownCodePage(s.into()))
    }
}

/// For `fatfs`, which decodes every short name (and the volume label)
/// with it. It never encodes: a new file's short name keeps the ASCII
/// letters of its name, the rest becomes `_` and the whole name goes into
/// a long (UTF-16) entry. `encode` still answers exactly, and `None` for
/// a character outside the page, as the trait asks.
impl fatfs::OemCpConverter for CodePage {
    fn decode(&self, oem_char: u8) -> char {
        CodePage::decode(*self, oem_char)
    }
    fn encode(&self, uni_char: char) -> Option<u8> {
        CodePage::encode(*self, uni_char)
    }
}

#[rustfmt::skip]
const CP437: [char; 128] = [
    // 0x80
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å',
    // 0x90
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ',
    // 0xA0
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»',
    // 0xB0
    '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐',
    // 0xC0
    '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧',
    // 0xD0
    '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀',
    // 0xE0
    'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩',
    // 0xF0
    '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{A0}',
];

#[rustfmt::skip]
const CP850: [char; 128] = [
    // 0x80
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å',
    // 0x90
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', 'ø', '£', 'Ø', '×', 'ƒ',
    // 0xA0
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '®', '¬', '½', '¼', '¡', '«', '»',
    // 0xB0
    '░', '▒', '▓', '│', '┤', 'Á', 'Â', 'À', '©', '╣', '║', '╗', '╝', '¢', '¥', '┐',
    // 0xC0
    '└', '┴', '┬', '├', '─', '┼', 'ã', 'Ã', '╚', '╔', '╩', '╦', '╠', '═', '╬', '¤',
    // 0xD0
    'ð', 'Ð', 'Ê', 'Ë', 'È', 'ı', 'Í', 'Î', 'Ï', '┘', '┌', '█', '▄', '¦', 'Ì', '▀',
    // 0xE0
    'Ó', 'ß', 'Ô', 'Ò', 'õ', 'Õ', 'µ', 'þ', 'Þ', 'Ú', 'Û', 'Ù', 'ý', 'Ý', '¯', '´',
    // 0xF0
    '\u{AD}', '±', '‗', '¾', '¶', '§', '÷', '¸', '°', '¨', '·', '¹', '³', '²', '■', '\u{A0}',
];

#[cfg(test)]
mod tests {
    use super::*;

    /// `python3 -c "print(bytes(range(128, 256)).decode('cp437'))"`
    /// (invisible characters escaped).
    const PY_CP437: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";
    /// The same with `'cp850'`.
    const PY_CP850: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜø£Ø×ƒáíóúñÑªº¿®¬½¼¡«»░▒▓│┤ÁÂÀ©╣║╗╝¢¥┐└┴┬├─┼ãÃ╚╔╩╦╠═╬¤ðÐÊËÈıÍÎÏ┘┌█▄¦Ì▀ÓßÔÒõÕµþÞÚÛÙýÝ¯´\u{ad}±‗¾¶§÷¸°¨·¹³²■\u{a0}";

    fn decoded(cp: CodePage) -> alloc::string::String {
        (0x80..=0xFF).map(|b| cp.decode(b)).collect()
    }

    #[test]
    fn tables_match_python() {
        assert_eq!(decoded(CodePage::CP437), PY_CP437);
        assert_eq!(decoded(CodePage::CP850), PY_CP850);
    }

    #[test]
    fn low_half_is_ascii() {
        for cp in [CodePage::CP437, CodePage::CP850] {
            for b in 0..0x80u8 {
                assert_eq!(cp.decode(b), char::from(b));
            }
        }
    }

    #[test]
    fn encode_inverts_decode() {
        for cp in [CodePage::CP437, CodePage::CP850] {
            for b in 0..=0xFFu8 {
                assert_eq!(cp.encode(cp.decode(b)), Some(b), "{cp:?} byte {b:#04x}");
            }
        }
    }

    #[test]
    fn characters_outside_the_page_are_refused() {
        for c in ['€', 'ł', '名', '\u{FFFD}'] {
            assert_eq!(CodePage::CP437.encode(c), None, "{c}");
            assert_eq!(CodePage::CP850.encode(c), None, "{c}");
        }
        assert_eq!(CodePage::CP437.encode('ø'), None);
        assert_eq!(CodePage::CP850.encode('₧'), None);
    }

    #[test]
    fn pages_differ_where_they_should() {
        assert_eq!(CodePage::CP437.decode(0x82), 'é');
        assert_eq!(CodePage::CP850.decode(0x82), 'é');
        assert_eq!(CodePage::CP437.decode(0x9B), '¢');
        assert_eq!(CodePage::CP850.decode(0x9B), 'ø');
        assert_eq!(CodePage::CP850.encode('¢'), Some(0xBD));
    }

    #[test]
    fn parsing() {
        assert_eq!("437".parse(), Ok(CodePage::CP437));
        assert_eq!("cp850".parse(), Ok(CodePage::CP850));
        assert_eq!("CP850".parse(), Ok(CodePage::CP850));
        assert_eq!(CodePage::default(), CodePage::CP437);
        assert_eq!(CodePage::CP850.to_string().parse(), Ok(CodePage::CP850));
        for bad in ["852", "", "cp", "utf8", "-437", "437 "] {
            assert_eq!(bad.parse::<CodePage>(), Err(UnknownCodePage(bad.into())));
        }
        assert_eq!(CodePage::new(1252), None);
        assert!(SUPPORTED.iter().all(|&n| CodePage::new(n).is_some_and(|c| c.number() == n)));
    }
}
