//! U-labels to A-labels for the DNS lookups and comparisons DMARC makes (RFC 5890 2.3.2.1 `xn--`
//! labels, Punycode RFC 3492 6.3): an internationalized From domain (RFC 6532) is looked up and
//! aligned as the A-label name its owner published. Only lowercasing is done as a mapping, not
//! the full UTS 46 processing: a name that needs more simply finds no record.

const BASE: u32 = 36;
const TMIN: u32 = 1;
const TMAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;

/// RFC 3492 6.1 bias adaptation.
fn adapt(delta: u32, points: u32, first: bool) -> u32 {
    let mut delta = if first { delta / DAMP } else { delta / 2 };
    delta += delta / points;
    let mut k = 0;
    while delta > ((BASE - TMIN) * TMAX) / 2 {
        delta /= BASE - TMIN;
        k += BASE;
    }
    k + (BASE - TMIN + 1) * delta / (delta + SKEW)
}

fn digit(d: u32) -> char {
    // 0..=25 are a..z, 26..=35 are 0..=9; `d` is always below BASE here.
    char::from(if d < 26 { b'a' + d as u8 } else { b'0' + (d - 26) as u8 })
}

/// RFC 3492 6.3 encoding of one label; `None` on overflow (labels that long are invalid anyway).
pub fn punycode(label: &str) -> Option<String> {
    let input: Vec<u32> = label.chars().map(u32::from).collect();
    let mut out: String = label.chars().filter(char::is_ascii).collect();
    let basic = out.len() as u32;
    let mut h = basic;
    if basic > 0 {
        out.push('-');
    }
    let (mut n, mut delta, mut bias) = (128u32, 0u32, 72u32);
    while (h as usize) < input.len() {
        let m = input.iter().copied().filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(h + 1)?)?;
        n = m;
        for &c in &input {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        TMIN
                    } else if k >= bias + TMAX {
                        TMAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    out.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit(q));
                bias = adapt(delta, h + 1, h == basic);
                delta = 0;
                h += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(out)
}

/// `domain` lowercased, its non-ASCII labels as A-labels; a label that cannot be encoded is kept
/// as it was (and then matches nothing).
pub fn to_ascii(domain: &str) -> String {
    if domain.is_ascii() {
        return domain.to_ascii_lowercase();
    }
    domain
        .split('.')
        .map(|l| {
            if l.is_ascii() {
                return l.to_ascii_lowercase();
            }
            let lower = l.to_lowercase();
            match punycode(&lower) {
                Some(p) => format!("xn--{p}"),
                None => lower,
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3492_and_psl_vectors() {
        assert_eq!(punycode("食狮").as_deref(), Some("85x722f"));
        assert_eq!(punycode("公司").as_deref(), Some("55qx5d"));
        assert_eq!(punycode("中国").as_deref(), Some("fiqs8s"));
        assert_eq!(punycode("bücher").as_deref(), Some("bcher-kva"));
        assert_eq!(punycode("münchen").as_deref(), Some("mnchen-3ya"));
        // RFC 3492 7.1 (A) Arabic (Egyptian), (L) 3<nen>B<gumi><kinpachi><sensei>.
        assert_eq!(punycode("ليهمابتكلموشعربي؟").as_deref(), Some("egbpdaj6bu4bxfgehfvwxn"));
        assert_eq!(punycode("3年b組金八先生").as_deref(), Some("3b-ww4c5e180e575a65lsy2b"));
    }

    #[test]
    fn domains() {
        assert_eq!(to_ascii("Example.COM"), "example.com");
        assert_eq!(to_ascii("www.食狮.公司.cn"), "www.xn--85x722f.xn--55qx5d.cn");
        assert_eq!(to_ascii("BÜCHER.example"), "xn--bcher-kva.example");
    }
}
