//! The route language: conditions (`if`) and actions (`do`), parsed into [`crate::route`]
//! types. Each parse works on one string and reports its first problem with a byte offset
//! in that string; the caller maps it into the file.
//!
//! Checks that need the whole config (set ids, route names, reply-route restrictions) are
//! left to the caller, through the [`Use`]s the parser records.

use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use crate::route::{Action, AnchorFlags, Cidr, CmpOp, Expr, Operand, Piece, Pv, Sht, ShtValue, Target, Template};
use crate::values::{self, closest};

/// A problem in a route-language string, at a byte offset of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LangError {
    pub(crate) at: usize,
    pub(crate) msg: String,
}

fn err<T>(at: usize, msg: impl Into<String>) -> Result<T, LangError> {
    Err(LangError { at, msg: msg.into() })
}

/// Something a parsed string refers to or relies on, for whole-config checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UseKind {
    /// `select <set>`.
    Set(u32),
    /// `route <name>`.
    Call(String),
    /// `$rs` / `$rr` (replies only).
    ReplyPv(&'static str),
    /// `reply` (requests only).
    ReplyAction,
    /// `select` (requests only).
    SelectAction,
    /// `forward "<target>"` (requests only).
    ForwardTarget,
    /// `forward`, with or without a target (not in failure routes: they `relay`).
    Forward,
    /// `relay`, `record_route`, `fork`, `on_failure`, `on_reply`, `anchor_media`: actions on a
    /// request and its transaction (not in reply routes). The action's name.
    Stateful(&'static str),
    /// `mark_down` (failure routes only, so neither in request nor in reply routes).
    MarkDown,
    /// the `flooding` condition (needs `[pike]`).
    Flooding,
    /// `on_failure <name>`: arms a named route; a use of it, not a call.
    OnFailure(String),
    /// `on_reply <name>`: arms a named route; a use of it, not a call.
    OnReply(String),
    /// `lookup <tree>`.
    Tree(String),
    /// `$sht(<table>=>...)`, `sht_set <table>`, `sht_inc <table>`, `sht_delete <table>`.
    Table(String),
    /// `$si in acl <group>`.
    Acl(String),
}

/// A [`UseKind`] at a byte offset of the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Use {
    pub(crate) kind: UseKind,
    pub(crate) at: usize,
}

/// The pseudo-variables, as written.
pub(crate) const PV_NAMES: &[&str] = &[
    "$si",
    "$sp",
    "$Ri",
    "$Rp",
    "$proto",
    "$rm",
    "$ru",
    "$rU",
    "$rd",
    "$rp",
    "$fu",
    "$fU",
    "$fd",
    "$ft",
    "$tu",
    "$tU",
    "$td",
    "$tt",
    "$ci",
    "$cs",
    "$ua",
    "$du",
    "$rs",
    "$rr",
    "$mt",
    "$hdr(Name)",
    "$sht(table=>key)",
];

fn pv_by_name(name: &str) -> Option<Pv> {
    Some(match name {
        "si" => Pv::SrcIp,
        "sp" => Pv::SrcPort,
        "Ri" => Pv::LocalIp,
        "Rp" => Pv::LocalPort,
        "proto" => Pv::Proto,
        "rm" => Pv::Method,
        "ru" => Pv::RUri,
        "rU" => Pv::RUser,
        "rd" => Pv::RDomain,
        "rp" => Pv::RPort,
        "fu" => Pv::FromUri,
        "fU" => Pv::FromUser,
        "fd" => Pv::FromDomain,
        "ft" => Pv::FromTag,
        "tu" => Pv::ToUri,
        "tU" => Pv::ToUser,
        "td" => Pv::ToDomain,
        "tt" => Pv::ToTag,
        "ci" => Pv::CallId,
        "cs" => Pv::CSeq,
        "ua" => Pv::UserAgent,
        "du" => Pv::DstUri,
        "rs" => Pv::Status,
        "rr" => Pv::Reason,
        "mt" => Pv::MtValue,
        _ => return None,
    })
}

/// Read a pseudo-variable at `s[at..]` (which starts with `$`). Returns it and its end.
fn lex_pv(s: &str, at: usize) -> Result<(Pv, usize), LangError> {
    let rest = &s[at + 1..];
    let len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
    let name = &rest[..len];
    let mut end = at + 1 + len;
    if name.is_empty() {
        return err(
            at,
            "a $ must start a pseudo-variable like $rU or $hdr(Name) (write \\$ for a literal $ in a value)",
        );
    }
    if name == "sht" {
        return err(
            at,
            "$sht(...) cannot be used here: htables are read in conditions (exists $sht(ipban=>$si), $sht(pike=>$si) > 10), not inside a quoted value, an htable key or hash_pv",
        );
    }
    if name == "hdr" {
        if !s[end..].starts_with('(') {
            return err(at, "$hdr needs a header name in parentheses: $hdr(X-Account)");
        }
        let Some(close) = s[end..].find(')') else {
            return err(at, "missing \")\" after the header name of $hdr(");
        };
        let header = s[end + 1..end + close].trim();
        if !values::is_token(header) {
            return err(at, format!("\"{header}\" is not a valid header name in $hdr(...)"));
        }
        end += close + 1;
        return Ok((Pv::Hdr(header.to_string()), end));
    }
    match pv_by_name(name) {
        Some(pv) => Ok((pv, end)),
        None => {
            let written = format!("${name}");
            let hint = closest(&written, PV_NAMES.iter().copied().filter(|n| !n.contains('(')))
                .map(|c| format!("did you mean {c}? "))
                .unwrap_or_default();
            err(at, format!("unknown pseudo-variable {written} ({hint}known: {})", PV_NAMES.join(" ")))
        }
    }
}

/// Does `rest` start with `$sht` (and not a longer name)?
fn is_sht(rest: &str) -> bool {
    rest.starts_with("$sht") && !rest.as_bytes().get(4).is_some_and(u8::is_ascii_alphabetic)
}

/// Read `$sht(TABLE=>KEY)` at `s[at..]` (which starts with `$sht`): the key is a template
/// written without quotes, up to the parenthesis that closes `$sht(` (so `$hdr(X)` may be in
/// it). Records the table's use. Returns it and its end.
fn lex_sht(s: &str, at: usize, uses: &mut Vec<Use>) -> Result<(Sht, usize), LangError> {
    let open = at + 4;
    if !s[open..].starts_with('(') {
        return err(at, "$sht needs a table and a key in parentheses: $sht(ipban=>$si)");
    }
    let mut depth = 0usize;
    let mut close = None;
    for (j, b) in s.bytes().enumerate().skip(open) {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(j);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(close) = close else {
        return err(at, "missing \")\" to close $sht(");
    };
    let inner = &s[open + 1..close];
    let Some(arrow) = inner.find("=>") else {
        return err(at, "$sht needs TABLE=>KEY in its parentheses, like $sht(ipban=>$si)");
    };
    let raw_table = &inner[..arrow];
    let table = raw_table.trim();
    let table_at = open + 1 + (raw_table.len() - raw_table.trim_start().len());
    if table.is_empty() {
        return err(table_at, "$sht needs a table name before =>, like $sht(ipban=>$si)");
    }
    if !crate::walk::is_name(table) {
        return err(table_at, format!("\"{table}\" is not an htable name (a letter, then letters, digits, _ and -)"));
    }
    let key_from = open + 1 + arrow + 2;
    let raw_key = &s[key_from..close];
    let key_start = key_from + (raw_key.len() - raw_key.trim_start().len());
    let key_end = close - (raw_key.len() - raw_key.trim_end().len());
    if key_start >= key_end {
        return err(close, format!("$sht({table}=>...) needs a key after =>, like $sht({table}=>$si)"));
    }
    uses.push(Use { kind: UseKind::Table(table.to_string()), at: table_at });
    let key = template(s, key_start..key_end, false, uses)?;
    Ok((Sht { table: table.to_string(), key }, close + 1))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Cmp(CmpOp),
    Match,
    NotMatch,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Cmp(CmpOp::Eq) => "==",
            Op::Cmp(CmpOp::Ne) => "!=",
            Op::Cmp(CmpOp::Lt) => "<",
            Op::Cmp(CmpOp::Le) => "<=",
            Op::Cmp(CmpOp::Gt) => ">",
            Op::Cmp(CmpOp::Ge) => ">=",
            Op::Cmp(CmpOp::StartsWith) => "^=",
            Op::Cmp(CmpOp::EndsWith) => "$=",
            Op::Cmp(CmpOp::Contains) => "*=",
            Op::Match => "=~",
            Op::NotMatch => "!~",
        }
    }
}

#[derive(Debug, Clone)]
enum Tok {
    Word(String),
    /// A quoted string: its value, the byte range between the quotes, and the quote.
    Str {
        value: String,
        body: Range<usize>,
        double: bool,
    },
    Pv(Pv),
    /// `$sht(table=>key)`.
    Sht(Sht),
    Op(Op),
    LParen,
    RParen,
    LBrack,
    RBrack,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    at: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_-.:/+%~@".contains(&b) || b >= 0x80
}

fn lex(s: &str, uses: &mut Vec<Use>) -> Result<Vec<Token>, LangError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let at = i;
        let two = s.get(i..i + 2).unwrap_or("");
        let (tok, end) = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' => (Tok::LParen, i + 1),
            b')' => (Tok::RParen, i + 1),
            b'[' => (Tok::LBrack, i + 1),
            b']' => (Tok::RBrack, i + 1),
            b',' => (Tok::Comma, i + 1),
            b'"' => {
                let mut value = String::new();
                let mut j = i + 1;
                loop {
                    match b.get(j) {
                        None => return err(at, "this string has no closing \""),
                        Some(b'"') => break,
                        Some(b'\\') if matches!(b.get(j + 1), Some(b'"' | b'\\')) => {
                            value.push(b[j + 1] as char);
                            j += 2;
                        }
                        Some(_) => {
                            let ch = s[j..].chars().next().unwrap_or('\u{fffd}');
                            value.push(ch);
                            j += ch.len_utf8();
                        }
                    }
                }
                (Tok::Str { value, body: i + 1..j, double: true }, j + 1)
            }
            b'\'' => match s[i + 1..].find('\'') {
                Some(n) => {
                    let body = i + 1..i + 1 + n;
                    (Tok::Str { value: s[body.clone()].to_string(), body, double: false }, i + 2 + n)
                }
                None => return err(at, "this string has no closing '"),
            },
            b'$' if two == "$=" => (Tok::Op(Op::Cmp(CmpOp::EndsWith)), i + 2),
            b'$' if is_sht(&s[i..]) => {
                let (sht, end) = lex_sht(s, i, uses)?;
                (Tok::Sht(sht), end)
            }
            b'$' => {
                let (pv, end) = lex_pv(s, i)?;
                (Tok::Pv(pv), end)
            }
            b'=' | b'!' | b'<' | b'>' | b'^' | b'*' | b'&' | b'|' | b';' => {
                let op = match two {
                    "==" => Op::Cmp(CmpOp::Eq),
                    "!=" => Op::Cmp(CmpOp::Ne),
                    "<=" => Op::Cmp(CmpOp::Le),
                    ">=" => Op::Cmp(CmpOp::Ge),
                    "^=" => Op::Cmp(CmpOp::StartsWith),
                    "*=" => Op::Cmp(CmpOp::Contains),
                    "=~" => Op::Match,
                    "!~" => Op::NotMatch,
                    "&&" => return err(at, "use `and` instead of &&"),
                    "||" => return err(at, "use `or` instead of ||"),
                    _ => match c {
                        b'<' => Op::Cmp(CmpOp::Lt),
                        b'>' => Op::Cmp(CmpOp::Gt),
                        b'=' => return err(at, "use == to compare (= alone is not an operator)"),
                        b'!' => return err(at, "use `not` to negate (or != / !~ to compare)"),
                        b';' => {
                            return err(
                                at,
                                "one action per string: use a list, do = [\"first action\", \"second action\"]",
                            );
                        }
                        _ => return err(at, format!("unexpected \"{}\"", c as char)),
                    },
                };
                let len = op.text().len();
                (Tok::Op(op), i + len)
            }
            _ if is_word_byte(c) => {
                let len = b[i..].iter().take_while(|&&x| is_word_byte(x)).count();
                (Tok::Word(s[i..i + len].to_string()), i + len)
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return err(at, format!("unexpected \"{ch}\""));
            }
        };
        out.push(Token { tok, at });
        i = end;
    }
    Ok(out)
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "true",
    "exists",
    "has_totag",
    "is_request",
    "is_reply",
    "cancelled",
    "timeout",
    "replied",
    "flooding",
];

/// How a token is shown in messages.
fn show(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("`{w}`"),
        Tok::Str { value, .. } => format!("\"{value}\""),
        Tok::Pv(pv) => pv.to_string(),
        Tok::Sht(sht) => sht.to_string(),
        Tok::Op(op) => format!("`{}`", op.text()),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::LBrack => "`[`".into(),
        Tok::RBrack => "`]`".into(),
        Tok::Comma => "`,`".into(),
    }
}

fn show_operand(o: &Operand) -> String {
    match o {
        Operand::Pv(pv) => pv.to_string(),
        Operand::Str(s) => format!("\"{s}\""),
        Operand::Int(n) => n.to_string(),
        Operand::Myself => "myself".into(),
        Operand::Sht(sht) => sht.to_string(),
    }
}

fn parse_int(w: &str) -> Option<i64> {
    let digits = w.strip_prefix('-').unwrap_or(w);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    w.parse().ok()
}

/// `10.0.0.0/8`, `2001:db8::/32`, or one address.
fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return Err(format!("\"{text}\" is not an IP address or prefix (like 10.0.0.0/8 or 2001:db8::/32)"));
    };
    let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max && l.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(format!("\"{text}\": prefix length {l} is out of range (0-{max})")),
        },
    };
    let masked = mask(ip, len);
    if masked != ip {
        return Err(format!("\"{text}\" has bits set after the prefix; did you mean {masked}/{len}?"));
    }
    Ok(Cidr { addr: ip, len })
}

pub(crate) fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// Header names ringsip maintains itself (with their compact forms).
const MANAGED: &[(&str, &[&str])] = &[
    ("Via", &["via", "v"]),
    ("From", &["from", "f"]),
    ("To", &["to", "t"]),
    ("Call-ID", &["call-id", "i"]),
    ("CSeq", &["cseq"]),
    ("Content-Length", &["content-length", "l"]),
    ("Max-Forwards", &["max-forwards"]),
];

const ACTIONS: &[&str] = &[
    "forward",
    "relay",
    "record_route",
    "fork",
    "on_failure",
    "on_reply",
    "select",
    "lookup",
    "reply",
    "drop",
    "return",
    "route",
    "set_header",
    "append_header",
    "remove_header",
    "sht_set",
    "sht_inc",
    "sht_delete",
    "mark_down",
    "anchor_media",
];

/// The shortest and longest `expires` of `sht_set` (as `[[htable]]` expiries).
const MIN_EXPIRY: Duration = Duration::from_secs(1);
const MAX_EXPIRY: Duration = Duration::from_secs(365 * 24 * 3600);

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    uses: &'a mut Vec<Use>,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, uses: &'a mut Vec<Use>) -> Result<Self, LangError> {
        let toks = lex(src, uses)?;
        for t in &toks {
            if let Tok::Pv(pv @ (Pv::Status | Pv::Reason)) = &t.tok {
                let name = if *pv == Pv::Status { "$rs" } else { "$rr" };
                uses.push(Use { kind: UseKind::ReplyPv(name), at: t.at });
            }
        }
        Ok(Parser { src, toks, pos: 0, uses })
    }

    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += usize::from(t.is_some());
        t
    }

    /// Where the next token starts (or the end of the text).
    fn here(&self) -> usize {
        self.peek().map_or(self.src.len(), |t| t.at)
    }

    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(x), .. }) if x == w)
    }

    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.peek_word(w);
        self.pos += usize::from(yes);
        yes
    }

    fn expect_end(&self, after: &str) -> Result<(), LangError> {
        match self.peek() {
            None => Ok(()),
            Some(t) => err(t.at, format!("unexpected {} {after}", show(&t.tok))),
        }
    }

    // ---- conditions ----

    fn or(&mut self) -> Result<Expr, LangError> {
        let mut e = self.and()?;
        while self.eat_word("or") {
            let r = self.and()?;
            e = Expr::Or(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, LangError> {
        let mut e = self.unary()?;
        while self.eat_word("and") {
            let r = self.unary()?;
            e = Expr::And(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, LangError> {
        if self.eat_word("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if let Some(Token { tok: Tok::LParen, at, .. }) = self.peek() {
            let open = *at;
            self.pos += 1;
            let e = self.or()?;
            return match self.next() {
                Some(Token { tok: Tok::RParen, .. }) => Ok(e),
                Some(t) => err(t.at, format!("expected `)` (to close the `(` before), found {}", show(&t.tok))),
                None => err(open, "this `(` is never closed"),
            };
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Expr, LangError> {
        let at = self.here();
        let Some(t) = self.peek().cloned() else {
            return err(at, "expected a condition here");
        };
        if let Tok::Word(w) = &t.tok {
            let simple = match w.as_str() {
                "true" => Some(Expr::True),
                "has_totag" => Some(Expr::HasToTag),
                "is_request" => Some(Expr::IsRequest),
                "is_reply" => Some(Expr::IsReply),
                "cancelled" => Some(Expr::Cancelled),
                "timeout" => Some(Expr::Timeout),
                "replied" => Some(Expr::Replied),
                _ => None,
            };
            if let Some(e) = simple {
                self.pos += 1;
                return Ok(e);
            }
            if w == "flooding" {
                self.uses.push(Use { kind: UseKind::Flooding, at: t.at });
                self.pos += 1;
                return Ok(Expr::Flooding);
            }
            if w == "exists" {
                self.pos += 1;
                return match self.next() {
                    Some(Token { tok: Tok::Pv(pv), .. }) => Ok(Expr::Exists(pv)),
                    Some(Token { tok: Tok::Sht(sht), .. }) => Ok(Expr::ShtExists(sht)),
                    Some(t) => err(
                        t.at,
                        format!(
                            "exists needs a pseudo-variable (exists $hdr(X-Foo)) or an htable entry (exists $sht(ipban=>$si)), not {}",
                            show(&t.tok)
                        ),
                    ),
                    None => err(
                        self.src.len(),
                        "exists needs a pseudo-variable or an htable entry: exists $hdr(X-Foo), exists $sht(ipban=>$si)",
                    ),
                };
            }
        }
        let (left, left_at, _) = self.operand("a condition")?;
        let Some(op_tok) = self.next() else {
            let hint = match &left {
                Operand::Pv(pv) => format!(
                    "{pv} alone is not a condition: compare it (like {pv} == \"...\") or test it with `exists {pv}`"
                ),
                Operand::Sht(sht) => format!(
                    "{sht} alone is not a condition: compare it (like {sht} > 10) or test it with `exists {sht}`"
                ),
                o => format!("{} alone is not a condition: compare it with ==, !=, ^=, =~, in ...", show_operand(o)),
            };
            return err(left_at, hint);
        };
        if matches!(left, Operand::Myself) {
            return err(left_at, "myself goes on the right of == or != (like $rd == myself)");
        }
        match op_tok.tok {
            Tok::Op(Op::Cmp(op)) => self.comparison(left, left_at, op, op_tok.at),
            Tok::Op(m @ (Op::Match | Op::NotMatch)) => match self.next() {
                Some(Token { tok: Tok::Str { value, .. }, at, .. }) => match regex::bytes::Regex::new(&value) {
                    Ok(regex) => Ok(Expr::Match { left, regex, negated: m == Op::NotMatch }),
                    Err(e) => err(at, format!("bad regular expression \"{value}\": {}", regex_msg(&e))),
                },
                Some(t) => {
                    err(t.at, format!("{} needs a regular expression in quotes, not {}", m.text(), show(&t.tok)))
                }
                None => err(self.src.len(), format!("{} needs a regular expression in quotes", m.text())),
            },
            Tok::Word(w) if w == "in" => self.membership(left, left_at),
            other => err(
                op_tok.at,
                format!(
                    "expected an operator after {} (== != < <= > >= ^= $= *= =~ !~ in), found {}",
                    show_operand(&left),
                    show(&other)
                ),
            ),
        }
    }

    /// An operand; also returns its offset and, for a bare word, the word as written.
    fn operand(&mut self, expected: &str) -> Result<(Operand, usize, Option<String>), LangError> {
        let at = self.here();
        let Some(t) = self.next() else {
            return err(at, format!("expected {expected} here"));
        };
        let o = match t.tok {
            Tok::Pv(pv) => (Operand::Pv(pv), t.at, None),
            Tok::Sht(sht) => (Operand::Sht(sht), t.at, None),
            Tok::Str { value, .. } => (Operand::Str(value), t.at, None),
            Tok::Word(w) if w == "myself" => (Operand::Myself, t.at, None),
            Tok::Word(w) if KEYWORDS.contains(&w.as_str()) => {
                return err(t.at, format!("expected a value, found the keyword `{w}` (quote it if you mean the text)"));
            }
            Tok::Word(w) => {
                let digits = w.strip_prefix('-').unwrap_or(&w);
                match parse_int(&w) {
                    Some(n) => (Operand::Int(n), t.at, Some(w)),
                    None if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                        return err(t.at, format!("{w} is too large for a number"));
                    }
                    None => (Operand::Str(w.clone()), t.at, Some(w)),
                }
            }
            other => {
                return err(
                    t.at,
                    format!(
                        "expected {expected} (a pseudo-variable like $rU, a \"string\", a number or a word), found {}",
                        show(&other)
                    ),
                );
            }
        };
        Ok(o)
    }

    fn comparison(&mut self, left: Operand, left_at: usize, op: CmpOp, op_at: usize) -> Result<Expr, LangError> {
        let text = Op::Cmp(op).text();
        let (mut right, right_at, word) = self.operand(&format!("a value after {text}"))?;
        if let Operand::Sht(sht) = &right {
            return err(
                right_at,
                format!("{sht} goes on the left of a comparison, like {sht} {text} {}", show_operand(&left)),
            );
        }
        if matches!(op, CmpOp::StartsWith | CmpOp::EndsWith | CmpOp::Contains)
            && let (Operand::Int(_), Some(w)) = (&right, word)
        {
            // Text operators compare text: keep "0044" as written.
            right = Operand::Str(w);
        }
        if matches!(right, Operand::Myself) {
            if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                return err(op_at, format!("myself only works with == and != (not {text})"));
            }
            let ok = matches!(left, Operand::Pv(Pv::RDomain | Pv::RUri | Pv::SrcIp | Pv::FromDomain | Pv::ToDomain));
            if !ok {
                return err(
                    left_at,
                    format!("myself compares with $rd, $ru, $si, $fd or $td, not {}", show_operand(&left)),
                );
            }
        }
        if matches!(op, CmpOp::Eq | CmpOp::Ne) && left == Operand::Pv(Pv::Method) {
            check_method_case(&right, right_at)?;
        }
        if matches!(op, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge) {
            for (o, at) in [(&left, left_at), (&right, right_at)] {
                if let Operand::Str(s) = o {
                    return err(at, format!("{text} compares numbers; \"{s}\" is not a number"));
                }
            }
        }
        Ok(Expr::Cmp(left, op, right))
    }

    fn membership(&mut self, left: Operand, left_at: usize) -> Result<Expr, LangError> {
        if self.peek_word("acl") {
            return self.acl(&left, left_at);
        }
        let net = matches!(left, Operand::Pv(Pv::SrcIp | Pv::LocalIp));
        let at = self.here();
        match self.peek().map(|t| t.tok.clone()) {
            Some(Tok::LBrack) => {
                self.pos += 1;
                let mut cidrs = Vec::new();
                let mut items = Vec::new();
                loop {
                    if let Some(Token { tok: Tok::RBrack, at, .. }) = self.peek() {
                        if cidrs.is_empty() && items.is_empty() {
                            return err(*at, "the list after `in` is empty");
                        }
                        self.pos += 1;
                        break;
                    }
                    if net {
                        cidrs.push(self.cidr()?);
                    } else {
                        let (o, o_at, _) = self.operand("a list item")?;
                        if matches!(o, Operand::Myself) {
                            return err(o_at, "myself cannot be a list item (use $rd == myself)");
                        }
                        if let Operand::Sht(sht) = &o {
                            return err(o_at, format!("{sht} cannot be a list item (compare it: {sht} == ...)"));
                        }
                        if left == Operand::Pv(Pv::Method) {
                            check_method_case(&o, o_at)?;
                        }
                        items.push(o);
                    }
                    match self.next() {
                        Some(Token { tok: Tok::Comma, .. }) => {}
                        Some(Token { tok: Tok::RBrack, .. }) => break,
                        Some(t) => {
                            return err(t.at, format!("expected `,` or `]` in the list, found {}", show(&t.tok)));
                        }
                        None => return err(at, "this list is never closed with `]`"),
                    }
                }
                Ok(if net { Expr::InNet(left, cidrs) } else { Expr::InList(left, items) })
            }
            Some(_) if net => Ok(Expr::InNet(left, vec![self.cidr()?])),
            Some(_) => err(
                at,
                format!(
                    "`in` needs a list in brackets: {} in [\"a\", \"b\"] (a single network like 10.0.0.0/8 works with $si and $Ri only)",
                    show_operand(&left)
                ),
            ),
            None => {
                let _ = left_at;
                err(at, "`in` needs a list in brackets after it")
            }
        }
    }

    /// `$si in acl NAME` (the parser is at `acl`): records the group's use.
    fn acl(&mut self, left: &Operand, left_at: usize) -> Result<Expr, LangError> {
        if *left != Operand::Pv(Pv::SrcIp) {
            return err(left_at, "acl groups match the source address: write $si in acl NAME");
        }
        self.pos += 1;
        match self.next() {
            Some(Token { tok: Tok::Word(w), at, .. }) if !KEYWORDS.contains(&w.as_str()) => {
                if !crate::walk::is_name(&w) {
                    return err(
                        at,
                        format!("\"{w}\" is not an acl group name (a letter, then letters, digits, _ and -)"),
                    );
                }
                self.uses.push(Use { kind: UseKind::Acl(w.clone()), at });
                Ok(Expr::InAcl(w))
            }
            Some(Token { tok: Tok::Str { value, .. }, at, .. }) => {
                err(at, format!("write the acl group name without quotes: $si in acl {value}"))
            }
            Some(t) => {
                err(t.at, format!("`in acl` needs a group name (like $si in acl trusted), not {}", show(&t.tok)))
            }
            None => err(self.src.len(), "`in acl` needs a group name: $si in acl trusted"),
        }
    }

    fn cidr(&mut self) -> Result<Cidr, LangError> {
        let at = self.here();
        match self.next() {
            Some(Token { tok: Tok::Word(w) | Tok::Str { value: w, .. }, at, .. }) => {
                parse_cidr(&w).or_else(|m| err(at, m))
            }
            Some(t) => err(t.at, format!("expected an IP address or prefix like 10.0.0.0/8, found {}", show(&t.tok))),
            None => err(at, "expected an IP address or prefix like 10.0.0.0/8"),
        }
    }

    // ---- actions ----

    fn action(&mut self) -> Result<Action, LangError> {
        let at = self.here();
        let (word, word_at) = match self.next() {
            Some(Token { tok: Tok::Word(w), at, .. }) => (w, at),
            Some(t) => {
                return err(t.at, format!("expected an action ({}), found {}", ACTIONS.join(", "), show(&t.tok)));
            }
            None => return err(at, format!("expected an action ({})", ACTIONS.join(", "))),
        };
        match word.as_str() {
            "forward" => {
                self.uses.push(Use { kind: UseKind::Forward, at: word_at });
                let target = self.target("forward")?;
                if target.is_some() {
                    self.uses.push(Use { kind: UseKind::ForwardTarget, at: word_at });
                }
                Ok(Action::Forward(target))
            }
            "relay" => {
                self.uses.push(Use { kind: UseKind::Stateful("relay"), at: word_at });
                Ok(Action::Relay(self.target("relay")?))
            }
            "record_route" => {
                self.uses.push(Use { kind: UseKind::Stateful("record_route"), at: word_at });
                Ok(Action::RecordRoute)
            }
            "fork" => {
                self.uses.push(Use { kind: UseKind::Stateful("fork"), at: word_at });
                Ok(Action::Fork)
            }
            "mark_down" => {
                self.uses.push(Use { kind: UseKind::MarkDown, at: word_at });
                Ok(Action::MarkDown)
            }
            "anchor_media" => {
                self.uses.push(Use { kind: UseKind::Stateful("anchor_media"), at: word_at });
                Ok(Action::AnchorMedia(self.anchor_flags()?))
            }
            "on_failure" | "on_reply" => {
                let failure = word == "on_failure";
                let which = if failure { "on_failure" } else { "on_reply" };
                let example = if failure { "on_failure failover" } else { "on_reply replies" };
                match self.next() {
                    Some(Token { tok: Tok::Word(w), at, .. }) if w != "else" => {
                        if !is_route_name(&w) {
                            return err(at, format!("\"{w}\" is not a route name (letters, digits, _ and -)"));
                        }
                        self.uses.push(Use { kind: UseKind::Stateful(which), at: word_at });
                        let kind = if failure { UseKind::OnFailure(w.clone()) } else { UseKind::OnReply(w.clone()) };
                        self.uses.push(Use { kind, at });
                        Ok(if failure { Action::OnFailure(w) } else { Action::OnReply(w) })
                    }
                    Some(Token { tok: Tok::Str { value, .. }, at, .. }) => {
                        err(at, format!("write the route name without quotes: {which} {value}"))
                    }
                    Some(t) => err(t.at, format!("{which} needs a route name (like {example}), not {}", show(&t.tok))),
                    None => err(self.src.len(), format!("{which} needs a route name: {example}")),
                }
            }
            "select" => {
                if self.eat_word("next") {
                    self.uses.push(Use { kind: UseKind::SelectAction, at: word_at });
                    let otherwise = if self.eat_word("else") { Some(Box::new(self.action()?)) } else { None };
                    return Ok(Action::SelectNext { otherwise });
                }
                if let Some(Token { tok: Tok::Pv(Pv::MtValue), .. }) = self.peek() {
                    self.pos += 1;
                    self.uses.push(Use { kind: UseKind::SelectAction, at: word_at });
                    let otherwise = if self.eat_word("else") { Some(Box::new(self.action()?)) } else { None };
                    return Ok(Action::SelectLookup { otherwise });
                }
                let set = match self.next() {
                    Some(Token { tok: Tok::Word(w), at, .. }) => match w.parse::<u32>() {
                        Ok(n) if w.bytes().all(|b| b.is_ascii_digit()) => {
                            self.uses.push(Use { kind: UseKind::Set(n), at });
                            n
                        }
                        _ => return err(at, format!("select needs a set id (a number, like select 1), not `{w}`")),
                    },
                    Some(t) => {
                        return err(t.at, format!("select needs a set id (like select 1), not {}", show(&t.tok)));
                    }
                    None => {
                        return err(
                            self.src.len(),
                            "select needs a set id (select 1), $mt (select $mt) or next (select next)",
                        );
                    }
                };
                self.uses.push(Use { kind: UseKind::SelectAction, at: word_at });
                let otherwise = if self.eat_word("else") { Some(Box::new(self.action()?)) } else { None };
                Ok(Action::Select { set, otherwise })
            }
            "lookup" => {
                let tree = match self.next() {
                    Some(Token { tok: Tok::Word(w), at, .. }) if w != "else" => {
                        self.uses.push(Use { kind: UseKind::Tree(w.clone()), at });
                        w
                    }
                    Some(t) => {
                        return err(
                            t.at,
                            format!("lookup needs a tree name (like lookup routes $rU), not {}", show(&t.tok)),
                        );
                    }
                    None => return err(self.src.len(), "lookup needs a tree name and a key: lookup routes $rU"),
                };
                let key = match self.next() {
                    Some(Token { tok: Tok::Pv(pv), .. }) => Template(vec![Piece::Pv(pv)]),
                    Some(Token { tok: Tok::Str { body, double, .. }, .. }) => {
                        template(self.src, body, double, self.uses)?
                    }
                    Some(t) => {
                        return err(
                            t.at,
                            format!(
                                "lookup needs a key, a pseudo-variable or a quoted value (like lookup {tree} $rU), not {}",
                                show(&t.tok)
                            ),
                        );
                    }
                    None => return err(self.src.len(), format!("lookup needs a key: lookup {tree} $rU")),
                };
                let all = self.eat_word("all");
                let otherwise = if self.eat_word("else") { Some(Box::new(self.action()?)) } else { None };
                Ok(Action::Lookup { tree, key, all, otherwise })
            }
            "reply" => {
                self.uses.push(Use { kind: UseKind::ReplyAction, at: word_at });
                let code = match self.next() {
                    Some(Token { tok: Tok::Word(w), at, .. }) => match w.parse::<u16>() {
                        Ok(c) if w.len() == 3 && (100..=699).contains(&c) => c,
                        _ => return err(at, format!("reply needs a status code 100-699 (3 digits), not `{w}`")),
                    },
                    Some(t) => {
                        return err(
                            t.at,
                            format!("reply needs a status code (like reply 404 \"Not Found\"), not {}", show(&t.tok)),
                        );
                    }
                    None => {
                        return err(self.src.len(), "reply needs a status code and a reason: reply 404 \"Not Found\"");
                    }
                };
                let reason = match self.next() {
                    Some(Token { tok: Tok::Str { value, .. }, at, .. }) => {
                        if value.trim().is_empty() {
                            return err(at, "the reason phrase is empty: write one, like reply 404 \"Not Found\"");
                        }
                        if value.contains(['\r', '\n']) {
                            return err(at, "the reason phrase cannot contain a line break");
                        }
                        value
                    }
                    Some(Token { tok: Tok::Word(w), at, .. }) => {
                        return err(at, format!("put the reason phrase in quotes: reply {code} \"{w}\""));
                    }
                    Some(t) => {
                        return err(t.at, format!("reply needs a reason phrase in quotes, not {}", show(&t.tok)));
                    }
                    None => {
                        return err(self.src.len(), format!("reply needs a reason phrase: reply {code} \"...\""));
                    }
                };
                Ok(Action::Reply { code, reason })
            }
            "drop" => Ok(Action::Drop),
            "return" => Ok(Action::Return),
            "route" => match self.next() {
                Some(Token { tok: Tok::Word(w), at, .. }) => {
                    if !is_route_name(&w) {
                        return err(at, format!("\"{w}\" is not a route name (letters, digits, _ and -)"));
                    }
                    self.uses.push(Use { kind: UseKind::Call(w.clone()), at });
                    Ok(Action::Route(w))
                }
                Some(t) => err(t.at, format!("route needs a route name (like route SAFEGUARD), not {}", show(&t.tok))),
                None => err(self.src.len(), "route needs a route name: route SAFEGUARD"),
            },
            "set_header" | "append_header" => {
                let name = self.header_name(&word)?;
                let value = match self.next() {
                    Some(Token { tok: Tok::Str { body, double, .. }, .. }) => {
                        template(self.src, body, double, self.uses)?
                    }
                    Some(t) => {
                        return err(t.at, format!("{word} needs a value in quotes: {word} {name} \"...\""));
                    }
                    None => {
                        return err(self.src.len(), format!("{word} needs a value in quotes: {word} {name} \"...\""));
                    }
                };
                Ok(if word == "set_header" {
                    Action::SetHeader { name, value }
                } else {
                    Action::AppendHeader { name, value }
                })
            }
            "remove_header" => Ok(Action::RemoveHeader(self.header_name(&word)?)),
            "sht_set" => {
                let sht = self.sht_target(&word)?;
                let value = match self.next() {
                    Some(Token { tok: Tok::Word(w), at, .. }) => match parse_int(&w) {
                        Some(n) => ShtValue::Int(n),
                        None if w.strip_prefix('-').unwrap_or(&w).bytes().all(|b| b.is_ascii_digit()) => {
                            return err(at, format!("{w} is too large for a number"));
                        }
                        None => {
                            return err(
                                at,
                                format!("put text values in quotes: sht_set {} {} \"{w}\"", sht.table, sht.key_shown()),
                            );
                        }
                    },
                    Some(Token { tok: Tok::Str { body, double, .. }, .. }) => {
                        ShtValue::Text(template(self.src, body, double, self.uses)?)
                    }
                    Some(Token { tok: Tok::Pv(pv), .. }) => ShtValue::Pv(pv),
                    Some(t) => {
                        return err(
                            t.at,
                            format!(
                                "sht_set needs a value: an integer, a quoted value or a pseudo-variable, not {}",
                                show(&t.tok)
                            ),
                        );
                    }
                    None => {
                        return err(
                            self.src.len(),
                            format!("sht_set needs a value: sht_set {} {} 1", sht.table, sht.key_shown()),
                        );
                    }
                };
                let expires = if self.eat_word("expires") {
                    let at = self.here();
                    match self.next() {
                        Some(Token { tok: Tok::Word(w) | Tok::Str { value: w, .. }, at, .. }) => {
                            Some(expiry(&w).or_else(|m| err(at, m))?)
                        }
                        Some(t) => {
                            return err(
                                t.at,
                                format!("expires needs a duration like 300s or 5m, not {}", show(&t.tok)),
                            );
                        }
                        None => return err(at, "expires needs a duration, like expires 300s"),
                    }
                } else {
                    None
                };
                Ok(Action::ShtSet { sht, value, expires })
            }
            "sht_inc" => {
                let sht = self.sht_target(&word)?;
                let by = match self.peek().cloned() {
                    Some(Token { tok: Tok::Word(w), at, .. }) => {
                        self.pos += 1;
                        match parse_int(&w) {
                            Some(n) => n,
                            None => {
                                return err(
                                    at,
                                    format!(
                                        "sht_inc adds a whole number (like sht_inc {} $si 1), not `{w}`",
                                        sht.table
                                    ),
                                );
                            }
                        }
                    }
                    _ => 1,
                };
                Ok(Action::ShtInc { sht, by })
            }
            "sht_delete" => Ok(Action::ShtDelete(self.sht_target(&word)?)),
            other => {
                let hint = match other {
                    "t_relay" | "t_relay_to" | "t_relay_to_udp" => {
                        " (ringsip's is `relay`, or `forward` to send statelessly)".to_string()
                    }
                    "send" | "forward_udp" => " (ringsip's is `forward`)".to_string(),
                    "ds_select_dst" | "ds_select" | "ds_select_domain" => " (ringsip's is `select <set>`)".to_string(),
                    "ds_next_dst" | "ds_next_domain" | "next_gw" => " (ringsip's is `select next`)".to_string(),
                    "ds_mark_dst" => " (ringsip's is `mark_down`)".to_string(),
                    "rtpengine_manage" | "rtpengine_offer" | "rtpengine_answer" | "rtpproxy_manage"
                    | "rtpproxy_offer" | "rtpproxy_answer" | "rtpengine_delete" | "rtpproxy_destroy" => {
                        " (ringsip's is `anchor_media [flags]`: it offers, answers and deletes by itself)".to_string()
                    }
                    "t_on_failure" => " (ringsip's is `on_failure <route>`)".to_string(),
                    "t_on_reply" | "t_on_branch" => " (ringsip's is `on_reply <route>`)".to_string(),
                    "mt_match" => " (ringsip's is `lookup <tree> <key>`)".to_string(),
                    "sl_send_reply" | "send_reply" | "t_reply" => {
                        " (ringsip's is `reply <code> \"<reason>\"`)".to_string()
                    }
                    "exit" => " (use `drop` or `return`)".to_string(),
                    "append_hf" => " (ringsip's is `append_header`)".to_string(),
                    "remove_hf" => " (ringsip's is `remove_header`)".to_string(),
                    "sht_rm" | "sht_rm_name" | "sht_rm_value" => " (ringsip's is `sht_delete TABLE KEY`)".to_string(),
                    "sht_setex" => " (ringsip's is `sht_set TABLE KEY VALUE expires DURATION`)".to_string(),
                    "sht_lock" | "sht_unlock" => " (not needed: sht_inc and sht_set are atomic)".to_string(),
                    _ => closest(other, ACTIONS.iter().copied())
                        .map(|c| format!(" (did you mean {c}?)"))
                        .unwrap_or_default(),
                };
                err(word_at, format!("unknown action `{other}`{hint}; actions: {}", ACTIONS.join(", ")))
            }
        }
    }

    /// The optional target of `forward` / `relay`: `"udp:IP:PORT"` or `"sip:IP[:PORT]"`.
    fn target(&mut self, action: &'static str) -> Result<Option<Target>, LangError> {
        match self.peek().cloned() {
            Some(Token { tok: Tok::Str { value, .. }, at, .. }) => {
                self.pos += 1;
                match values::target(&value, action) {
                    Ok(addr) => Ok(Some(Target { text: value, addr })),
                    Err(e) => err(at, e),
                }
            }
            Some(Token { tok: Tok::Word(w), at, .. }) if w != "else" => {
                err(at, format!("put the {action} target in quotes: {action} \"{w}\""))
            }
            _ => Ok(None),
        }
    }

    /// The flags after `anchor_media`: words, each at most once.
    fn anchor_flags(&mut self) -> Result<AnchorFlags, LangError> {
        let names = AnchorFlags::NAMES.join(", ");
        let mut flags = AnchorFlags::default();
        while let Some(t) = self.next() {
            let (w, at) = match t.tok {
                Tok::Word(w) => (w, t.at),
                Tok::Str { value, .. } => {
                    return err(t.at, format!("write the anchor_media flags without quotes: anchor_media {value}"));
                }
                other => {
                    return err(t.at, format!("anchor_media takes flags ({names}), not {}", show(&other)));
                }
            };
            match flags.flag_mut(&w) {
                Some(true) => return err(at, format!("anchor_media: {w} is given twice")),
                Some(f) => *f = true,
                None => {
                    let hint = match closest(&w, AnchorFlags::NAMES) {
                        Some(c) => format!("did you mean {c}? "),
                        None if w.eq_ignore_ascii_case("ice") => "did you mean ice_remove? ".to_string(),
                        None => String::new(),
                    };
                    return err(at, format!("unknown anchor_media flag `{w}` ({hint}flags: {names})"));
                }
            }
        }
        Ok(flags)
    }

    fn header_name(&mut self, action: &str) -> Result<String, LangError> {
        let (name, at) = match self.next() {
            Some(Token { tok: Tok::Word(w), at, .. }) => (w, at),
            Some(Token { tok: Tok::Str { value, .. }, at, .. }) => (value, at),
            Some(t) => return err(t.at, format!("{action} needs a header name (like X-Tenant), not {}", show(&t.tok))),
            None => return err(self.src.len(), format!("{action} needs a header name, like {action} X-Tenant")),
        };
        if !values::is_token(&name) {
            return err(at, format!("\"{name}\" is not a valid header name"));
        }
        let lower = name.to_ascii_lowercase();
        if let Some((canon, _)) = MANAGED.iter().find(|(_, forms)| forms.contains(&lower.as_str())) {
            return err(at, format!("ringsip manages {canon} itself; {action} cannot change it"));
        }
        Ok(name)
    }
}

impl Parser<'_> {
    /// The table and key of `sht_set`, `sht_inc` and `sht_delete`: a table name (recorded as
    /// a use), then a key (a pseudo-variable or a quoted template).
    fn sht_target(&mut self, action: &str) -> Result<Sht, LangError> {
        let example = match action {
            "sht_set" => "sht_set ipban $si 1",
            "sht_inc" => "sht_inc pike $si",
            _ => "sht_delete ipban $si",
        };
        let table = match self.next() {
            Some(Token { tok: Tok::Word(w), at, .. }) => {
                if !crate::walk::is_name(&w) {
                    return err(at, format!("\"{w}\" is not an htable name (a letter, then letters, digits, _ and -)"));
                }
                self.uses.push(Use { kind: UseKind::Table(w.clone()), at });
                w
            }
            Some(Token { tok: Tok::Sht(sht), at, .. }) => {
                return err(
                    at,
                    format!("{action} takes the table and the key apart: {action} {} {}", sht.table, sht.key_shown()),
                );
            }
            Some(t) => {
                return err(t.at, format!("{action} needs an htable name (like {example}), not {}", show(&t.tok)));
            }
            None => return err(self.src.len(), format!("{action} needs an htable name and a key: {example}")),
        };
        let key = match self.next() {
            Some(Token { tok: Tok::Pv(pv), .. }) => Template(vec![Piece::Pv(pv)]),
            Some(Token { tok: Tok::Str { body, double, .. }, at, .. }) => {
                let key = template(self.src, body, double, self.uses)?;
                if key.0.is_empty() {
                    return err(at, "the htable key is empty");
                }
                key
            }
            Some(Token { tok: Tok::Word(w), at, .. }) => {
                return err(
                    at,
                    format!("put the key in quotes: {action} {table} \"{w}\" (or use a pseudo-variable like $si)"),
                );
            }
            Some(t) => {
                return err(
                    t.at,
                    format!(
                        "{action} needs a key: a pseudo-variable or a quoted value (like {example}), not {}",
                        show(&t.tok)
                    ),
                );
            }
            None => return err(self.src.len(), format!("{action} needs a key after the table name: {example}")),
        };
        Ok(Sht { table, key })
    }
}

impl Sht {
    /// The key as written in an action (`$si`, `"$fU@$fd"`), for messages.
    fn key_shown(&self) -> String {
        match self.key.0.as_slice() {
            [Piece::Pv(pv)] => pv.to_string(),
            _ => format!("\"{}\"", self.key),
        }
    }
}

/// `expires` of `sht_set`: a duration in whole seconds, 1 s to 365 days.
fn expiry(w: &str) -> Result<Duration, String> {
    let d = values::duration(w).map_err(|m| format!("expires: {m}"))?;
    if d.subsec_nanos() != 0 {
        return Err(format!("expires \"{w}\" is not a whole number of seconds (expiry is counted in seconds)"));
    }
    if d < MIN_EXPIRY {
        return Err(format!(
            "expires \"{w}\" is zero: leave expires out for the table's autoexpire (or for an entry that never expires)"
        ));
    }
    if d > MAX_EXPIRY {
        return Err(format!("expires \"{w}\" is longer than 365 days (8760h)"));
    }
    Ok(d)
}

/// The methods of RFC 3261 and its extensions, to catch `$rm == invite`.
const METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
];

/// Methods are case-sensitive (RFC 3261 §7.1): `invite` never matches an INVITE.
fn check_method_case(o: &Operand, at: usize) -> Result<(), LangError> {
    if let Operand::Str(m) = o {
        let upper = m.to_ascii_uppercase();
        if upper != *m && METHODS.contains(&upper.as_str()) {
            return err(at, format!("methods are case-sensitive: \"{m}\" never matches; write {upper}"));
        }
    }
    Ok(())
}

/// Route names: letters, digits, `_` and `-`.
pub(crate) fn is_route_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The one-line reason of a regex error (the regex crate's message spans several lines).
fn regex_msg(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error:").map(|m| m.trim().to_string()))
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A value template from the raw text between the quotes of a string.
fn template(src: &str, body: Range<usize>, double: bool, uses: &mut Vec<Use>) -> Result<Template, LangError> {
    let raw = &src[body.clone()];
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < raw.len() {
        let rest = &raw[i..];
        if rest.starts_with("\\$") {
            text.push('$');
            i += 2;
        } else if double && (rest.starts_with("\\\"") || rest.starts_with("\\\\")) {
            text.push(rest.as_bytes()[1] as char);
            i += 2;
        } else if rest.starts_with('$') {
            let (pv, end) = lex_pv(src, body.start + i)?;
            if matches!(pv, Pv::Status | Pv::Reason) {
                let name = if pv == Pv::Status { "$rs" } else { "$rr" };
                uses.push(Use { kind: UseKind::ReplyPv(name), at: body.start + i });
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Pv(pv));
            i = end - body.start;
        } else {
            let ch = rest.chars().next().unwrap_or('\u{fffd}');
            if ch == '\r' || ch == '\n' {
                return err(body.start + i, "a header value cannot contain a line break");
            }
            text.push(ch);
            i += ch.len_utf8();
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(Template(pieces))
}

/// Parse a condition (`if`).
pub(crate) fn parse_cond(s: &str, uses: &mut Vec<Use>) -> Result<Expr, LangError> {
    let mut p = Parser::new(s, uses)?;
    if p.peek().is_none() {
        return err(0, "the condition is empty (leave `if` out for a rule that always runs)");
    }
    let e = p.or()?;
    p.expect_end("after the condition (join conditions with `and` / `or`)")?;
    Ok(e)
}

/// Parse one action (one entry of `do`).
pub(crate) fn parse_action(s: &str, uses: &mut Vec<Use>) -> Result<Action, LangError> {
    let start = s.len() - s.trim_start().len();
    if is_sht(&s[start..]) {
        return err(
            start,
            "an htable is written with an action, not an assignment: sht_set TABLE KEY VALUE (or sht_inc TABLE KEY, sht_delete TABLE KEY)",
        );
    }
    let mut p = Parser::new(s, uses)?;
    let a = p.action()?;
    p.expect_end("after the action (one action per string; use a list for more: do = [\"...\", \"...\"])")?;
    Ok(a)
}

/// Parse a lone pseudo-variable (`hash_pv`).
pub(crate) fn parse_pv(s: &str) -> Result<Pv, LangError> {
    let start = s.len() - s.trim_start().len();
    if !s[start..].starts_with('$') {
        return err(start, format!("\"{s}\" is not a pseudo-variable (write one like \"$hdr(X-Account)\" or \"$fU\")"));
    }
    let (pv, end) = lex_pv(s, start)?;
    if !s[end..].trim().is_empty() {
        return err(end, "hash_pv is one pseudo-variable, with nothing after it");
    }
    Ok(pv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(s: &str) -> Expr {
        parse_cond(s, &mut Vec::new()).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn cond_err(s: &str) -> LangError {
        match parse_cond(s, &mut Vec::new()) {
            Ok(e) => panic!("{s} parsed: {e:?}"),
            Err(e) => e,
        }
    }

    fn action(s: &str) -> Action {
        parse_action(s, &mut Vec::new()).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn action_err(s: &str) -> LangError {
        match parse_action(s, &mut Vec::new()) {
            Ok(a) => panic!("{s} parsed: {a:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        let e = cond("is_request or has_totag and not true");
        let Expr::Or(a, b) = e else { panic!("{e:?}") };
        assert!(matches!(*a, Expr::IsRequest));
        let Expr::And(c, d) = *b else { panic!() };
        assert!(matches!(*c, Expr::HasToTag));
        assert!(matches!(*d, Expr::Not(ref x) if matches!(**x, Expr::True)));
        let e = cond("(is_request or has_totag) and true");
        assert!(matches!(e, Expr::And(..)));
    }

    #[test]
    fn comparisons() {
        let e = cond("$hdr(Max-Forwards) == 0");
        assert!(matches!(e, Expr::Cmp(Operand::Pv(Pv::Hdr(ref h)), CmpOp::Eq, Operand::Int(0)) if h == "Max-Forwards"));
        let e = cond("$rm == INVITE");
        assert!(matches!(e, Expr::Cmp(Operand::Pv(Pv::Method), CmpOp::Eq, Operand::Str(ref s)) if s == "INVITE"));
        let e = cond(r#"$rU ^= "+1""#);
        assert!(matches!(e, Expr::Cmp(Operand::Pv(Pv::RUser), CmpOp::StartsWith, Operand::Str(ref s)) if s == "+1"));
        let e = cond("$rU ^= 0044");
        assert!(matches!(e, Expr::Cmp(_, CmpOp::StartsWith, Operand::Str(ref s)) if s == "0044"));
        let e = cond("$ua *= 'sip\"vicious'");
        assert!(matches!(e, Expr::Cmp(_, CmpOp::Contains, Operand::Str(ref s)) if s == "sip\"vicious"));
        let e = cond(r#"$fU $= "\"x\\""#);
        assert!(matches!(e, Expr::Cmp(_, CmpOp::EndsWith, Operand::Str(ref s)) if s == "\"x\\"));
        for (text, op) in [("<", CmpOp::Lt), ("<=", CmpOp::Le), (">", CmpOp::Gt), (">=", CmpOp::Ge), ("!=", CmpOp::Ne)]
        {
            let e = cond(&format!("$cs {text} -5"));
            assert!(matches!(e, Expr::Cmp(Operand::Pv(Pv::CSeq), o, Operand::Int(-5)) if o == op), "{text}");
        }
        let e = cond("$rd != myself");
        assert!(matches!(e, Expr::Cmp(Operand::Pv(Pv::RDomain), CmpOp::Ne, Operand::Myself)));
    }

    #[test]
    fn regex_and_lists() {
        let e = cond(r#"$ua =~ "friendly-scanner|sipvicious""#);
        let Expr::Match { left: Operand::Pv(Pv::UserAgent), regex, negated: false } = e else { panic!() };
        assert!(regex.is_match(b"the sipvicious tool"));
        assert!(matches!(cond("$ua !~ 'x'"), Expr::Match { negated: true, .. }));
        let e = cond(r#"$rm in [INVITE, "BYE", 3]"#);
        let Expr::InList(Operand::Pv(Pv::Method), items) = e else { panic!() };
        assert_eq!(items.len(), 3);
        let e = cond("$si in [10.0.0.0/8, 192.0.2.1, '2001:db8::/32']");
        let Expr::InNet(Operand::Pv(Pv::SrcIp), nets) = e else { panic!() };
        assert_eq!(nets[0], Cidr { addr: "10.0.0.0".parse().unwrap(), len: 8 });
        assert_eq!(nets[1], Cidr { addr: "192.0.2.1".parse().unwrap(), len: 32 });
        assert_eq!(nets[2].len, 32);
        let e = cond("$Ri in 127.0.0.0/8");
        assert!(matches!(e, Expr::InNet(Operand::Pv(Pv::LocalIp), ref n) if n.len() == 1));
        assert!(matches!(cond("exists $hdr(X-Foo)"), Expr::Exists(Pv::Hdr(_))));
    }

    #[test]
    fn condition_errors() {
        let e = cond_err("$xx == 1");
        assert_eq!(e.at, 0);
        assert!(e.msg.contains("unknown pseudo-variable $xx") && e.msg.contains("$rU"), "{}", e.msg);
        let e = cond_err("$ua =~ \"(abc\"");
        assert_eq!(e.at, 7);
        assert!(e.msg.contains("bad regular expression") && e.msg.contains("unclosed group"), "{}", e.msg);
        let e = cond_err("$rU == myself");
        assert!(e.msg.contains("myself compares with"), "{}", e.msg);
        let e = cond_err("$rd ^= myself");
        assert!(e.msg.contains("only works with == and !="), "{}", e.msg);
        let e = cond_err("myself == $rd");
        assert!(e.msg.contains("goes on the right"), "{}", e.msg);
        let e = cond_err("$rU = 1");
        assert!(e.msg.contains("use =="), "{}", e.msg);
        let e = cond_err("$rU == 1 && true");
        assert_eq!(e.at, 9);
        let e = cond_err("$si in 10.0.0.1/8");
        assert!(e.msg.contains("10.0.0.0/8"), "{}", e.msg);
        let e = cond_err("$rU in 10.0.0.0/8");
        assert!(e.msg.contains("list in brackets"), "{}", e.msg);
        let e = cond_err("$hdr(X)");
        assert!(e.msg.contains("exists $hdr(X)"), "{}", e.msg);
        let e = cond_err("(true");
        assert!(e.msg.contains("never closed"), "{}", e.msg);
        let e = cond_err("true true");
        assert_eq!(e.at, 5);
        let e = cond_err("$rU < \"abc\"");
        assert!(e.msg.contains("compares numbers"), "{}", e.msg);
        let e = cond_err("$rm == invite");
        assert!(e.msg.contains("write INVITE"), "{}", e.msg);
        assert_eq!(e.at, 7);
        assert!(cond_err("$rm in [INVITE, 'bye']").msg.contains("write BYE"));
        assert!(matches!(cond("$rU == -"), Expr::Cmp(_, _, Operand::Str(ref s)) if s == "-"));
        assert!(cond_err("$cs > 99999999999999999999").msg.contains("too large"));
        let e = cond_err("$ru == \"open");
        assert!(e.msg.contains("no closing"), "{}", e.msg);
    }

    #[test]
    fn lookup_and_select_from_it() {
        let Action::Lookup { tree, key, all: false, otherwise: Some(o) } =
            action("lookup routes $rU else reply 404 \"No route\"")
        else {
            panic!()
        };
        assert_eq!(tree, "routes");
        assert_eq!(key, Template(vec![Piece::Pv(Pv::RUser)]));
        assert!(matches!(*o, Action::Reply { code: 404, .. }));
        let Action::Lookup { key, otherwise: None, all: false, .. } = action("lookup tags \"$fU-$rU\"") else {
            panic!()
        };
        assert!(matches!(
            action("lookup routes $rU all else reply 404 \"No route\""),
            Action::Lookup { all: true, otherwise: Some(_), .. }
        ));
        assert_eq!(key.0.len(), 3);
        let mut uses = Vec::new();
        parse_action("lookup routes $rU", &mut uses).unwrap();
        assert!(uses.contains(&Use { kind: UseKind::Tree("routes".into()), at: 7 }));
        assert!(matches!(action("select $mt else drop"), Action::SelectLookup { otherwise: Some(_) }));
        assert!(matches!(action("select $mt"), Action::SelectLookup { otherwise: None }));
        assert!(action_err("lookup").msg.contains("tree name"));
        assert!(action_err("lookup routes").msg.contains("needs a key"));
        assert!(action_err("lookup routes 42").msg.contains("pseudo-variable or a quoted value"));
        assert!(action_err("mt_match routes").msg.contains("lookup <tree> <key>"));
        assert!(action_err("select $rU").msg.contains("set id"));
    }

    #[test]
    fn actions() {
        assert!(matches!(action("forward"), Action::Forward(None)));
        let Action::Forward(Some(t)) = action("forward \"udp:10.0.0.1:5070\"") else { panic!() };
        assert_eq!(t.addr, "10.0.0.1:5070".parse::<std::net::SocketAddr>().unwrap());
        let Action::Select { set: 1, otherwise: Some(o) } = action("select 1 else reply 503 \"No destination\"") else {
            panic!()
        };
        assert!(matches!(*o, Action::Reply { code: 503, ref reason } if reason == "No destination"));
        assert!(matches!(action("select 2"), Action::Select { set: 2, otherwise: None }));
        assert!(matches!(action("drop"), Action::Drop));
        assert!(matches!(action("return"), Action::Return));
        assert!(matches!(action("route SAFE-guard_1"), Action::Route(ref n) if n == "SAFE-guard_1"));
        let Action::SetHeader { name, value } = action(r#"set_header X-Src "from $si:$sp \$5""#) else { panic!() };
        assert_eq!(name, "X-Src");
        assert_eq!(
            value.0,
            vec![
                Piece::Text("from ".into()),
                Piece::Pv(Pv::SrcIp),
                Piece::Text(":".into()),
                Piece::Pv(Pv::SrcPort),
                Piece::Text(" $5".into())
            ]
        );
        assert!(matches!(action("append_header X-A 'v'"), Action::AppendHeader { .. }));
        assert!(matches!(action("remove_header X-A"), Action::RemoveHeader(ref n) if n == "X-A"));
    }

    #[test]
    fn action_errors() {
        assert!(action_err("set_header Via \"x\"").msg.contains("ringsip manages Via itself"));
        assert!(action_err("remove_header i").msg.contains("ringsip manages Call-ID itself"));
        assert!(action_err("reply 99 \"x\"").msg.contains("100-699"));
        assert!(action_err("reply 404").msg.contains("reason"));
        assert!(action_err("reply 404 \"\"").msg.contains("empty"));
        assert!(action_err("t_relay").msg.contains("forward"));
        assert!(action_err("forwrd").msg.contains("did you mean forward"));
        assert!(action_err("forward \"sip:gw.example.com\"").msg.contains("host names need DNS"));
        let e = action_err("forward; drop");
        assert_eq!(e.at, 7);
        assert!(e.msg.contains("one action per string"));
        let e = action_err("drop forward");
        assert_eq!(e.at, 5);
        assert!(action_err("set_header X \"a $zz\"").msg.contains("unknown pseudo-variable $zz"));
        assert!(action_err("select x").msg.contains("set id"));
    }

    #[test]
    fn stateful_actions() {
        assert_eq!(action("relay"), Action::Relay(None));
        let Action::Relay(Some(t)) = action("relay \"sip:10.0.0.1\"") else { panic!() };
        assert_eq!((t.text.as_str(), t.addr), ("sip:10.0.0.1", "10.0.0.1:5060".parse().unwrap()));
        let Action::Relay(Some(t)) = action("relay 'udp:[2001:db8::1]:5070'") else { panic!() };
        assert_eq!(t.addr, "[2001:db8::1]:5070".parse::<std::net::SocketAddr>().unwrap());
        assert_eq!(action("record_route"), Action::RecordRoute);
        assert_eq!(action("on_failure failover"), Action::OnFailure("failover".into()));
        assert_eq!(action("on_reply  replies-1"), Action::OnReply("replies-1".into()));
        assert_eq!(action("mark_down"), Action::MarkDown);
        assert_eq!(action("select next"), Action::SelectNext { otherwise: None });
        assert_eq!(
            action("select next else reply 503 \"x\""),
            Action::SelectNext { otherwise: Some(Box::new(Action::Reply { code: 503, reason: "x".into() })) }
        );
        assert_eq!(
            action("select 1 else select next else drop"),
            Action::Select {
                set: 1,
                otherwise: Some(Box::new(Action::SelectNext { otherwise: Some(Box::new(Action::Drop)) }))
            }
        );
        assert_eq!(
            action("select next else relay"),
            Action::SelectNext { otherwise: Some(Box::new(Action::Relay(None))) }
        );
    }

    #[test]
    fn stateful_action_errors() {
        let check = |text: &str, at: usize, msg: &str| {
            let e = action_err(text);
            assert_eq!((e.at, e.msg.as_str()), (at, msg), "{text}");
        };
        check("relay sip:10.0.0.1", 6, "put the relay target in quotes: relay \"sip:10.0.0.1\"");
        check(
            "relay \"sip:gw.example.com\"",
            6,
            "\"sip:gw.example.com\": host names need DNS, which ringsip does not do on the hot path; use an IP address",
        );
        check("relay \"udp:10.0.0.1\"", 6, "relay target \"udp:10.0.0.1\" needs a port: \"udp:10.0.0.1:5060\"");
        check(
            "relay \"tcp:10.0.0.1:5060\"",
            6,
            "relay target \"tcp:10.0.0.1:5060\": tcp is not supported yet (only udp)",
        );
        check("relay drop", 6, "put the relay target in quotes: relay \"drop\"");
        check("relay; drop", 5, "one action per string: use a list, do = [\"first action\", \"second action\"]");
        check(
            "record_route drop",
            13,
            "unexpected `drop` after the action (one action per string; use a list for more: do = [\"...\", \"...\"])",
        );
        check("on_failure", 10, "on_failure needs a route name: on_failure failover");
        check("on_reply", 8, "on_reply needs a route name: on_reply replies");
        check("on_failure \"failover\"", 11, "write the route name without quotes: on_failure failover");
        check("on_failure f.x", 11, "\"f.x\" is not a route name (letters, digits, _ and -)");
        check("on_failure $rU", 11, "on_failure needs a route name (like on_failure failover), not $rU");
        check(
            "on_failure a b",
            13,
            "unexpected `b` after the action (one action per string; use a list for more: do = [\"...\", \"...\"])",
        );
        check(
            "select next 1",
            12,
            "unexpected `1` after the action (one action per string; use a list for more: do = [\"...\", \"...\"])",
        );
        check("select", 6, "select needs a set id (select 1), $mt (select $mt) or next (select next)");
        check(
            "mark_down 1",
            10,
            "unexpected `1` after the action (one action per string; use a list for more: do = [\"...\", \"...\"])",
        );
        // Kamailio's names point at ringsip's
        assert!(action_err("t_relay").msg.contains("ringsip's is `relay`"));
        assert!(action_err("t_on_failure(\"x\")").msg.contains("ringsip's is `on_failure <route>`"));
        assert!(action_err("ds_next_dst").msg.contains("ringsip's is `select next`"));
        assert!(action_err("ds_mark_dst").msg.contains("ringsip's is `mark_down`"));
        assert!(action_err("record_rout").msg.contains("did you mean record_route?"));
        assert!(action_err("rlay").msg.contains("did you mean relay?"));
        let all = action_err("nope").msg;
        for a in ["relay", "record_route", "on_failure", "on_reply", "mark_down"] {
            assert!(all.contains(a), "{all}");
        }
    }

    #[test]
    fn anchor_media_and_its_flags() {
        assert_eq!(action("anchor_media"), Action::AnchorMedia(AnchorFlags::default()));
        assert_eq!(
            action("anchor_media ice_remove"),
            Action::AnchorMedia(AnchorFlags { ice_remove: true, ..AnchorFlags::default() })
        );
        assert_eq!(
            action("anchor_media  replace_origin trust_address asymmetric ice_remove "),
            Action::AnchorMedia(AnchorFlags {
                ice_remove: true,
                asymmetric: true,
                trust_address: true,
                replace_origin: true
            })
        );
        let Action::AnchorMedia(f) = action("anchor_media replace_origin ice_remove") else { panic!() };
        assert_eq!(f.to_string(), "ice_remove replace_origin");
        assert_eq!(AnchorFlags::default().to_string(), "");
        // the use is recorded at the action's word, as for the other stateful actions
        let mut uses = Vec::new();
        parse_action(" anchor_media asymmetric", &mut uses).unwrap();
        assert_eq!(uses, vec![Use { kind: UseKind::Stateful("anchor_media"), at: 1 }]);
        // `select ... else anchor_media` is an action like any other
        assert_eq!(
            action("select 1 else anchor_media"),
            Action::Select { set: 1, otherwise: Some(Box::new(Action::AnchorMedia(AnchorFlags::default()))) }
        );
    }

    #[test]
    fn anchor_media_errors() {
        let check = |text: &str, at: usize, msg: &str| {
            let e = action_err(text);
            assert_eq!((e.at, e.msg.as_str()), (at, msg), "{text}");
        };
        check(
            "anchor_media ice_remve",
            13,
            "unknown anchor_media flag `ice_remve` (did you mean ice_remove? flags: ice_remove, asymmetric, trust_address, replace_origin)",
        );
        check(
            "anchor_media replace-origin",
            13,
            "unknown anchor_media flag `replace-origin` (did you mean replace_origin? flags: ice_remove, asymmetric, trust_address, replace_origin)",
        );
        check(
            "anchor_media ice_remove loud",
            24,
            "unknown anchor_media flag `loud` (flags: ice_remove, asymmetric, trust_address, replace_origin)",
        );
        check(
            "anchor_media ICE",
            13,
            "unknown anchor_media flag `ICE` (did you mean ice_remove? flags: ice_remove, asymmetric, trust_address, replace_origin)",
        );
        check("anchor_media asymmetric asymmetric", 24, "anchor_media: asymmetric is given twice");
        check("anchor_media 'ice_remove'", 13, "write the anchor_media flags without quotes: anchor_media ice_remove");
        check(
            "anchor_media $rU",
            13,
            "anchor_media takes flags (ice_remove, asymmetric, trust_address, replace_origin), not $rU",
        );
        check(
            "anchor_media; relay",
            12,
            "one action per string: use a list, do = [\"first action\", \"second action\"]",
        );
        assert!(action_err("anchor_medi").msg.contains("did you mean anchor_media?"));
        assert!(action_err("rtpengine_manage").msg.contains("ringsip's is `anchor_media [flags]`"));
        assert!(action_err("nope").msg.contains("anchor_media"));
    }

    #[test]
    fn stateful_uses_are_recorded() {
        let uses = |text: &str| {
            let mut uses = Vec::new();
            parse_action(text, &mut uses).unwrap();
            uses
        };
        assert_eq!(uses("relay"), vec![Use { kind: UseKind::Stateful("relay"), at: 0 }]);
        assert_eq!(uses("relay \"sip:10.0.0.1\""), vec![Use { kind: UseKind::Stateful("relay"), at: 0 }]);
        assert_eq!(uses("record_route"), vec![Use { kind: UseKind::Stateful("record_route"), at: 0 }]);
        assert_eq!(uses("mark_down"), vec![Use { kind: UseKind::MarkDown, at: 0 }]);
        assert_eq!(
            uses("on_failure  failover"),
            vec![
                Use { kind: UseKind::Stateful("on_failure"), at: 0 },
                Use { kind: UseKind::OnFailure("failover".into()), at: 12 }
            ]
        );
        assert_eq!(
            uses("on_reply r"),
            vec![Use { kind: UseKind::Stateful("on_reply"), at: 0 }, Use { kind: UseKind::OnReply("r".into()), at: 9 }]
        );
        assert_eq!(uses("select next"), vec![Use { kind: UseKind::SelectAction, at: 0 }]);
        assert_eq!(uses("forward"), vec![Use { kind: UseKind::Forward, at: 0 }]);
        assert_eq!(
            uses("forward \"udp:10.0.0.1:5060\""),
            vec![Use { kind: UseKind::Forward, at: 0 }, Use { kind: UseKind::ForwardTarget, at: 0 }]
        );
    }

    #[test]
    fn failure_conditions() {
        assert!(matches!(cond("cancelled"), Expr::Cancelled));
        assert!(matches!(cond("timeout"), Expr::Timeout));
        assert!(matches!(cond("replied"), Expr::Replied));
        let Expr::Or(a, b) = cond("$rs >= 500 and $rs < 600 or timeout and not replied") else { panic!() };
        assert!(matches!(*a, Expr::And(..)));
        let Expr::And(t, n) = *b else { panic!() };
        assert!(matches!(*t, Expr::Timeout));
        assert!(matches!(*n, Expr::Not(ref r) if matches!(**r, Expr::Replied)));
        // keywords, not values
        let e = cond_err("$rU == timeout");
        assert_eq!(
            (e.at, e.msg.as_str()),
            (7, "expected a value, found the keyword `timeout` (quote it if you mean the text)")
        );
        assert!(matches!(cond("$rU == \"timeout\""), Expr::Cmp(_, CmpOp::Eq, Operand::Str(ref s)) if s == "timeout"));
        let e = cond_err("cancelled == 1");
        assert_eq!(e.at, 10, "{}", e.msg);
    }

    #[test]
    fn uses_are_recorded() {
        let mut uses = Vec::new();
        parse_action("select 7 else route fallback", &mut uses).unwrap();
        assert!(uses.contains(&Use { kind: UseKind::Set(7), at: 7 }));
        assert!(uses.contains(&Use { kind: UseKind::SelectAction, at: 0 }));
        assert!(uses.contains(&Use { kind: UseKind::Call("fallback".into()), at: 20 }));
        let mut uses = Vec::new();
        parse_cond("$rs >= 500", &mut uses).unwrap();
        assert_eq!(uses, vec![Use { kind: UseKind::ReplyPv("$rs"), at: 0 }]);
    }

    #[test]
    fn acl_conditions() {
        assert!(matches!(cond("$si in acl trusted"), Expr::InAcl(ref n) if n == "trusted"));
        let Expr::Not(e) = cond("not $si in acl trusted") else { panic!() };
        assert!(matches!(*e, Expr::InAcl(ref n) if n == "trusted"));
        assert!(matches!(cond("$si in acl a-1 and $rm == INVITE"), Expr::And(..)));
        assert!(matches!(cond("($si in acl peers) or true"), Expr::Or(..)));
        let mut uses = Vec::new();
        parse_cond("not $si in acl  peers_v6", &mut uses).unwrap();
        assert_eq!(uses, vec![Use { kind: UseKind::Acl("peers_v6".into()), at: 16 }]);
    }

    #[test]
    fn acl_condition_errors() {
        let check = |text: &str, at: usize, msg: &str| {
            let e = cond_err(text);
            assert_eq!((e.at, e.msg.as_str()), (at, msg), "{text}");
        };
        check("$Ri in acl trusted", 0, "acl groups match the source address: write $si in acl NAME");
        check("$rU in acl trusted", 0, "acl groups match the source address: write $si in acl NAME");
        check("true and $sp in acl trusted", 9, "acl groups match the source address: write $si in acl NAME");
        check("$si in acl", 10, "`in acl` needs a group name: $si in acl trusted");
        check("$si in acl 1st", 11, "\"1st\" is not an acl group name (a letter, then letters, digits, _ and -)");
        check("$si in acl \"trusted\"", 11, "write the acl group name without quotes: $si in acl trusted");
        check("$si in acl and", 11, "`in acl` needs a group name (like $si in acl trusted), not `and`");
        check("$si in acl [a]", 11, "`in acl` needs a group name (like $si in acl trusted), not `[`");
        check("$si in acl a b", 13, "unexpected `b` after the condition (join conditions with `and` / `or`)");
    }

    fn sht(table: &str, key: Vec<Piece>) -> Sht {
        Sht { table: table.into(), key: Template(key) }
    }

    #[test]
    fn sht_reads_in_conditions() {
        let Expr::ShtExists(s) = cond("exists $sht(ipban=>$si)") else { panic!() };
        assert_eq!(s, sht("ipban", vec![Piece::Pv(Pv::SrcIp)]));
        let e = cond("$sht(pike=>$si) > 100");
        assert!(
            matches!(e, Expr::Cmp(Operand::Sht(ref s), CmpOp::Gt, Operand::Int(100)) if s.table == "pike"),
            "{e:?}"
        );
        let e = cond(r#"$sht(route=>$rU) == "gw-a""#);
        assert!(matches!(e, Expr::Cmp(Operand::Sht(_), CmpOp::Eq, Operand::Str(ref s)) if s == "gw-a"), "{e:?}");
        // the key is a template without quotes: text and pseudo-variables
        let Expr::Cmp(Operand::Sht(s), ..) = cond("$sht(users=>$fU@$fd) != 0") else { panic!() };
        assert_eq!(s, sht("users", vec![Piece::Pv(Pv::FromUser), Piece::Text("@".into()), Piece::Pv(Pv::FromDomain)]));
        assert_eq!(s.to_string(), "$sht(users=>$fU@$fd)");
        // the closing parenthesis is found by depth; spaces around the names do not count
        let Expr::ShtExists(s) = cond("exists $sht( acct => $hdr(X-Account)-x )") else { panic!() };
        assert_eq!(s, sht("acct", vec![Piece::Pv(Pv::Hdr("X-Account".into())), Piece::Text("-x".into())]));
        let Expr::ShtExists(s) = cond(r"exists $sht(t=>a\$b)") else { panic!() };
        assert_eq!(s.key, Template(vec![Piece::Text("a$b".into())]));
        assert_eq!(s.to_string(), r"$sht(t=>a\$b)");
        // also on the left of =~ and in
        assert!(matches!(cond(r#"$sht(t=>$si) =~ "^gw""#), Expr::Match { left: Operand::Sht(_), .. }));
        assert!(matches!(cond(r#"$sht(t=>$si) in ["a", 2]"#), Expr::InList(Operand::Sht(_), ref l) if l.len() == 2));
        assert!(matches!(cond("not exists $sht(a=>$si) and true"), Expr::And(..)));
        // uses: the table at its name, reply pseudo-variables in the key
        let text = "not exists $sht(ipban=>$si) or $sht( pike=>$rs) > 1";
        let mut uses = Vec::new();
        parse_cond(text, &mut uses).unwrap();
        assert!(uses.contains(&Use { kind: UseKind::Table("ipban".into()), at: 16 }), "{uses:?}");
        let pike = text.find("pike").unwrap();
        assert!(uses.contains(&Use { kind: UseKind::Table("pike".into()), at: pike }), "{uses:?}");
        assert!(uses.contains(&Use { kind: UseKind::ReplyPv("$rs"), at: text.find("$rs").unwrap() }), "{uses:?}");
    }

    #[test]
    fn sht_condition_errors() {
        let check = |text: &str, at: usize, part: &str| {
            let e = cond_err(text);
            assert!(e.msg.contains(part), "{text}: {}", e.msg);
            assert_eq!(e.at, at, "{text}: {}", e.msg);
        };
        check("exists $sht(ipban)", 7, "TABLE=>KEY");
        check("exists $sht ipban", 7, "in parentheses");
        check("exists $sht(ipban=>$si", 7, "missing \")\"");
        check("$sht(ipban=>) == 1", 12, "needs a key after =>");
        check("$sht(ipban=>  ) == 1", 14, "needs a key after =>");
        check("$sht(=>$si) == 1", 5, "needs a table name");
        check("$sht(1ban=>$si) == 1", 5, "not an htable name");
        check("$sht(a=>$xx) == 1", 8, "unknown pseudo-variable $xx");
        check("$sht(a=>$sht(b=>$si)) == 1", 8, "cannot be used here");
        check("$sht(a=>$si)", 0, "alone is not a condition");
        assert!(cond_err("$sht(a=>$si)").msg.contains("exists $sht(a=>$si)"));
        check("$rU == $sht(a=>$si)", 7, "goes on the left of a comparison");
        check("$rU in [1, $sht(a=>$si)]", 11, "cannot be a list item");
        check("$sht(a=>$si) < \"x\"", 15, "compares numbers");
        check("$sht(a=>$si) == myself", 0, "myself compares with");
        check("exists 5", 7, "exists $sht(ipban=>$si)");
    }

    #[test]
    fn sht_actions() {
        let si = || vec![Piece::Pv(Pv::SrcIp)];
        assert_eq!(
            action("sht_set ipban $si 1"),
            Action::ShtSet { sht: sht("ipban", si()), value: ShtValue::Int(1), expires: None }
        );
        for (text, secs) in [("300s", 300), ("5m", 300), ("\"1h\"", 3600), ("'2000ms'", 2), ("8760h", 365 * 86400)] {
            let a = action(&format!("sht_set ipban $si -3 expires {text}"));
            let want = Action::ShtSet {
                sht: sht("ipban", si()),
                value: ShtValue::Int(-3),
                expires: Some(Duration::from_secs(secs)),
            };
            assert_eq!(a, want, "{text}");
        }
        let Action::ShtSet { sht: s, value: ShtValue::Text(v), expires: None } =
            action(r#"sht_set users "$fU@$fd" "$si:$sp""#)
        else {
            panic!()
        };
        assert_eq!(s.key.0.len(), 3);
        assert_eq!(v, Template(vec![Piece::Pv(Pv::SrcIp), Piece::Text(":".into()), Piece::Pv(Pv::SrcPort)]));
        assert!(matches!(action("sht_set last $ci $cs"), Action::ShtSet { value: ShtValue::Pv(Pv::CSeq), .. }));
        assert_eq!(action("sht_inc pike $si"), Action::ShtInc { sht: sht("pike", si()), by: 1 });
        assert_eq!(action("sht_inc pike $si -2"), Action::ShtInc { sht: sht("pike", si()), by: -2 });
        assert_eq!(
            action("sht_inc calls 'acct-$hdr(X-Account)' 5"),
            Action::ShtInc {
                sht: sht("calls", vec![Piece::Text("acct-".into()), Piece::Pv(Pv::Hdr("X-Account".into()))]),
                by: 5
            }
        );
        assert_eq!(action("sht_delete ipban $si"), Action::ShtDelete(sht("ipban", si())));
        // uses: the table name, where it is written
        let mut uses = Vec::new();
        parse_action("sht_set ipban $si 1", &mut uses).unwrap();
        assert_eq!(uses, vec![Use { kind: UseKind::Table("ipban".into()), at: 8 }]);
        let mut uses = Vec::new();
        parse_action("sht_delete  seen \"$rs\"", &mut uses).unwrap();
        assert!(uses.contains(&Use { kind: UseKind::Table("seen".into()), at: 12 }));
        assert!(uses.contains(&Use { kind: UseKind::ReplyPv("$rs"), at: 18 }));
    }

    #[test]
    fn sht_action_errors() {
        let check = |text: &str, at: usize, part: &str| {
            let e = action_err(text);
            assert!(e.msg.contains(part), "{text}: {}", e.msg);
            assert_eq!(e.at, at, "{text}: {}", e.msg);
        };
        check("sht_set", 7, "needs an htable name and a key");
        check("sht_set 9x $si 1", 8, "not an htable name");
        check("sht_set \"ipban\" $si 1", 8, "needs an htable name");
        check("sht_set $sht(ipban=>$si) 1", 8, "takes the table and the key apart: sht_set ipban $si");
        check("sht_set ipban", 13, "needs a key after the table name");
        check("sht_set ipban 1.2.3.4 1", 14, "put the key in quotes: sht_set ipban \"1.2.3.4\"");
        check("sht_set ipban \"\" 1", 14, "key is empty");
        check("sht_set ipban $si", 17, "sht_set needs a value");
        check("sht_set ipban $si banned", 18, "put text values in quotes: sht_set ipban $si \"banned\"");
        check("sht_set ipban $si 99999999999999999999", 18, "too large");
        check("sht_set ipban $si [", 18, "sht_set needs a value");
        check("sht_set ipban $si 1 expires", 27, "expires needs a duration");
        check("sht_set ipban $si 1 expires 300", 28, "needs a unit");
        check("sht_set ipban $si 1 expires 1500ms", 28, "whole number of seconds");
        check("sht_set ipban $si 1 expires 0s", 28, "is zero");
        check("sht_set ipban $si 1 expires 9000h", 28, "365 days");
        check("sht_set ipban $si 1 forever", 20, "unexpected `forever`");
        check("sht_inc pike $si x", 17, "adds a whole number");
        check("sht_inc pike", 12, "needs a key");
        check("sht_delete ipban $si 1", 21, "unexpected `1`");
        check("$sht(ipban=>$si) = 1", 0, "not an assignment: sht_set TABLE KEY VALUE");
        check("sht_rm ipban $si", 0, "sht_delete TABLE KEY");
        check("sht_sett ipban $si 1", 0, "did you mean sht_set?");
        check("set_header X-Ban \"$sht(ipban=>$si)\"", 18, "cannot be used here");
        check("sht_set t \"$sht(a=>$si)\" 1", 11, "cannot be used here");
        assert!(parse_pv("$sht(a=>$si)").unwrap_err().msg.contains("hash_pv"));
    }

    #[test]
    fn hash_pv() {
        assert_eq!(parse_pv("$hdr(X-Account)").unwrap(), Pv::Hdr("X-Account".into()));
        assert_eq!(parse_pv("$fU").unwrap(), Pv::FromUser);
        assert!(parse_pv("X-Account").is_err());
        assert!(parse_pv("$fU $tU").is_err());
    }
}
