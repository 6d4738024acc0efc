//! Arguments as the shell passes them to a program (the process
//! service's `SPAWN` line after the program's name): one string, its words
//! split by whitespace. A word the user quoted may hold spaces and the
//! shell's own characters (`;`, `|`, `>` ...); within the string each such
//! ASCII character travels as the private-use character U+E000 plus its
//! code, so that no one splits or acts on it, and [`words`] turns it back.

/// Where the escaped characters start.
const BASE: u32 = 0xE000;

/// An empty quoted word (`""`, `''`) as it travels: the escaped NUL,
/// which stands for nothing, so that the word keeps its place; a word of
/// it alone is the empty word.
pub const EMPTY: char = '\u{E000}';

/// `c` as it travels inside a quoted word: ASCII punctuation and
/// whitespace escaped, anything else as it is.
pub fn escape(c: char) -> char {
    if c.is_ascii() && !c.is_ascii_alphanumeric() {
        char::from_u32(BASE + c as u32).unwrap_or(c)
    } else {
        c
    }
}

/// `word` with its escaped characters turned back ([`EMPTY`] to
/// nothing).
pub fn unescape(word: &str) -> alloc::string::String {
    word.chars().filter(|c| *c != EMPTY).map(unescape_char).collect()
}

/// One character turned back (see [`escape`]).
fn unescape_char(c: char) -> char {
    match u32::from(c).checked_sub(BASE) {
        Some(code) if code < 0x80 => char::from(code as u8),
        _ => c,
    }
}

/// `word` as one word of an argument string: its whitespace escaped (the
/// rest as it is, for programs that split on whitespace alone).
pub fn word(word: &str) -> alloc::string::String {
    word.chars().map(|c| if c.is_whitespace() { escape(c) } else { c }).collect()
}

/// The words of `args`, as the user meant them.
pub fn words(args: &str) -> alloc::vec::Vec<alloc::string::String> {
    args.split_whitespace().map(unescape).collect()
}

/// Whether `name` matches `pattern`, one path component as the shell
/// has it after quoting: an unescaped `*` matches any run of characters,
/// an unescaped `?` any one character, and every other character (an
/// escaped one turned back) itself; [`EMPTY`] stands for nothing.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: alloc::vec::Vec<char> = pattern.chars().filter(|c| *c != EMPTY).collect();
    let n: alloc::vec::Vec<char> = name.chars().collect();
    // The last `*` seen, and where in `name` its run ends so far: on a
    // mismatch the run takes one more character and matching goes on
    // from there (linear in practice, never exponential).
    let (mut i, mut j, mut star, mut resume) = (0, 0, None, 0);
    while j < n.len() {
        if p.get(i) == Some(&'*') {
            star = Some(i);
            resume = j;
            i += 1;
        } else if p.get(i).is_some_and(|&c| c == '?' || unescape_char(c) == n[j]) {
            i += 1;
            j += 1;
        } else if let Some(s) = star {
            i = s + 1;
            resume += 1;
            j = resume;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_words_travel_whole() {
        let quoted: alloc::string::String = "a b;c|d>e".chars().map(escape).collect();
        assert!(!quoted.contains([' ', ';', '|', '>']), "{quoted:?}");
        let line = alloc::format!("cat {quoted}  x");
        assert_eq!(words(&line), ["cat", "a b;c|d>e", "x"]);
        assert_eq!(unescape("plain é"), "plain é");
        assert_eq!(escape('é'), 'é');
        assert_eq!(escape('7'), '7');
        let line = alloc::format!("nc {} -l {}", word("a b"), word("10.0.2.2"));
        assert_eq!(line.split_whitespace().nth(2), Some("-l"), "only whitespace escaped");
        assert_eq!(words(&line), ["nc", "a b", "-l", "10.0.2.2"]);
    }

    #[test]
    fn wildcards_match_names_and_quoted_ones_are_plain() {
        for (pattern, name, want) in [
            ("*", "anything", true),
            ("*", "", true),
            ("*.txt", "a.txt", true),
            ("*.txt", "a.txt.bak", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "abcbc", true),
            ("a*b*c", "acb", false),
            ("?", "x", true),
            ("?", "xy", false),
            ("h?llo", "hello", true),
            ("**a", "bba", true),
            ("exact", "exact", true),
            ("exact", "exacT", false),
        ] {
            assert_eq!(matches(pattern, name), want, "{pattern} ~ {name}");
        }
        // Quoted (escaped) wildcards are themselves.
        let quoted: alloc::string::String = ['a', escape('*')].into_iter().collect();
        assert!(matches(&quoted, "a*"));
        assert!(!matches(&quoted, "ab"));
        let q = alloc::format!("{}{EMPTY}", escape('?'));
        assert!(matches(&q, "?") && !matches(&q, "x"));
    }

    #[test]
    fn an_empty_quoted_word_keeps_its_place() {
        let line = alloc::format!("echo a {EMPTY} b {EMPTY}{EMPTY} c{EMPTY}");
        assert_eq!(words(&line), ["echo", "a", "", "b", "", "c"]);
    }
}
