//! Message templates as data (`public.message_templates`): a small, safe
//! template language, parsed once and rendered against an outbox payload.
//!
//! ```text
//! {{path}}                    a value: `client_name`, `quota.per_day`, `items.0.sku`
//! {{path | money}}            formatters, chained left to right (below)
//! {{"text"}}                  a literal (how to write `{{`: {{"{{"}})
//! {{! comment }}              nothing
//! {{#if path}}…{{else if path == "x"}}…{{else}}…{{/if}}
//!                             false: missing, null, false, 0, "", [] and {};
//!                             `path == "x"` / `path != "x"` compare the value's
//!                             text; `{{#if notes | trim}}` tests the formatted text
//! {{#each path max=100}}…{{/each}}
//!                             each element of an array, at most `max` (optional)
//!   inside: `name`, `this`    the element (paths start at it);
//!           `@root.path`      the whole payload; `@index` 0, 1, 2…
//! {{@more}}                   how many elements the last finished
//!                             `{{#each … max=N}}` left out (0 if none)
//! a `\` ending a line         joins it to the next (the newline and the next
//!                             line's leading whitespace are dropped), as in Rust
//! ```
//!
//! Formatters: `money` (`1,234.50`, [`crate::format::money`]), `number` (a
//! decimal without trailing zeros), `label` ([`crate::format::label`]),
//! `date` (`YYYY-MM-DD` of an ISO date or timestamp, as written), `trim`, and
//! `plural:"line":"lines"` (the first word for a count of one, else the
//! second; a count is a number or an array's length). Numbers are exact: a
//! JSON number keeps its text (`arbitrary_precision`) and numeric strings are
//! accepted too.
//!
//! Strict by design: a missing variable, or a null one, is an error naming
//! the part, line and column (only `{{#if}}` tests optional values), and so is
//! an unknown formatter (when parsing). Every inserted value is escaped for
//! the output the caller names ([`Escape`]); the template's own text is not,
//! and there is no raw insertion. Output is never parsed again. Bounded: a
//! template of at most 64 KiB, blocks nested at most 8 deep, at most 512 KiB
//! of output and a million rendering steps; no includes, no user code.

use std::borrow::Cow;
use std::fmt;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::format::{label, money};
use crate::validate::{is_date, parse_decimal};

pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
pub const MAX_DEPTH: usize = 8;
pub const MAX_OUTPUT_BYTES: usize = 512 * 1024;
/// Nodes rendered and loop turns taken, in all.
pub const MAX_STEPS: usize = 1_000_000;

/// How inserted values are escaped, chosen by the caller for each part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// `& < > " '`: HTML text and attribute values.
    Html,
    /// `& < >`: Slack's control characters.
    Slack,
    /// Plain text: subjects, text bodies, SMS.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The part (`subject`, `html`, `body`…), as given to [`Template::parse_part`].
    pub part: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (part, line, column) = (&self.part, self.line, self.column);
        write!(f, "{part}, line {line}, column {column}: {}", self.message)
    }
}

impl std::error::Error for TemplateError {}

/// A parsed template: parse once, render many times.
#[derive(Debug, Clone)]
pub struct Template {
    part: String,
    nodes: Vec<Node>,
}

type Pos = (usize, usize);

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Insert(Expr, Pos),
    /// The first branch whose condition holds, else the last list.
    If(Vec<(Cond, Vec<Node>)>, Vec<Node>, Pos),
    Each(Base, usize, Vec<Node>, Pos),
}

#[derive(Debug, Clone)]
enum Base {
    Literal(String),
    Index,
    More,
    /// Its text, whether it starts at `@root`, and its keys.
    Path(String, bool, Vec<String>),
}

#[derive(Debug, Clone)]
struct Expr {
    base: Base,
    filters: Vec<Filter>,
}

#[derive(Debug, Clone)]
struct Cond {
    expr: Expr,
    /// `== "x"` (true) or `!= "x"` (false).
    compare: Option<(bool, String)>,
}

#[derive(Debug, Clone)]
enum Filter {
    Money,
    Number,
    Label,
    Date,
    Trim,
    Plural(String, String),
}

impl Template {
    /// [`Template::parse_part`] for a part named `template`.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        Template::parse_part("template", source)
    }

    /// Parses `source`; `part` names it in every error, parsing or rendering.
    pub fn parse_part(part: &str, source: &str) -> Result<Template, TemplateError> {
        let mut p = Parser {
            src: source,
            at: 0,
            pos: (1, 1),
            part,
        };
        if source.len() > MAX_TEMPLATE_BYTES {
            let m = format!(
                "the template is {} bytes, over the {MAX_TEMPLATE_BYTES}-byte limit",
                source.len()
            );
            return Err(p.err((1, 1), m));
        }
        match p.block(0)? {
            (nodes, End::Eof) => Ok(Template {
                part: part.to_owned(),
                nodes,
            }),
            (_, end) => Err(p.unexpected(end, "the end of the template", (1, 1))),
        }
    }

    /// Renders against `context`, escaping every inserted value for `escape`.
    pub fn render(&self, context: &Value, escape: Escape) -> Result<String, TemplateError> {
        let mut r = Render {
            part: &self.part,
            root: context,
            scope: Vec::new(),
            more: 0,
        };
        let mut out = Out {
            text: String::new(),
            escape,
            steps: 0,
            at: (1, 1),
        };
        r.nodes(&self.nodes, &mut out)?;
        Ok(out.text)
    }
}

// ------------------------------------------------------------------ parsing

struct Parser<'a> {
    src: &'a str,
    at: usize,
    pos: Pos,
    part: &'a str,
}

/// What ended a run of nodes.
enum End {
    Eof,
    Else(Pos),
    ElseIf(Cond, Pos),
    Close(&'static str, Pos),
}

enum Token<'a> {
    Text(String),
    Tag(&'a str, Pos),
    Eof,
}

impl<'a> Parser<'a> {
    fn err(&self, (line, column): Pos, message: impl Into<String>) -> TemplateError {
        let (part, message) = (self.part.to_owned(), message.into());
        TemplateError {
            part,
            line,
            column,
            message,
        }
    }

    fn advance(&mut self, bytes: usize) {
        let end = (self.at + bytes).min(self.src.len());
        for c in self.src.get(self.at..end).unwrap_or("").chars() {
            self.pos = if c == '\n' {
                (self.pos.0 + 1, 1)
            } else {
                (self.pos.0, self.pos.1 + 1)
            };
        }
        self.at = end;
    }

    fn token(&mut self) -> Result<Token<'a>, TemplateError> {
        loop {
            let rest = &self.src[self.at..];
            let text = match rest.find("{{") {
                _ if rest.is_empty() => return Ok(Token::Eof),
                Some(0) => "",
                Some(i) => &rest[..i],
                None => rest,
            };
            if !text.is_empty() {
                self.advance(text.len());
                return Ok(Token::Text(joined(text)));
            }
            let at = self.pos;
            let b = rest.as_bytes();
            let (mut i, mut quoted) = (2, false);
            if b.get(2) == Some(&b'!') {
                let end = rest
                    .find("}}")
                    .ok_or_else(|| self.err(at, "a comment with no }}"))?;
                self.advance(end + 2);
                continue;
            }
            loop {
                match b.get(i) {
                    None if quoted => {
                        return Err(self.err(at, "a string with no closing \" in this tag"))
                    }
                    None => return Err(self.err(at, "a tag with no closing }}")),
                    Some(b'"') => quoted = !quoted,
                    Some(b'}') if !quoted && b.get(i + 1) == Some(&b'}') => break,
                    Some(b'{') if !quoted && b.get(i + 1) == Some(&b'{') => {
                        return Err(self.err(at, "{{ inside a tag: the tag has no closing }}"))
                    }
                    _ => {}
                }
                i += 1;
            }
            self.advance(i + 2);
            return Ok(Token::Tag(rest[2..i].trim(), at));
        }
    }

    fn block(&mut self, depth: usize) -> Result<(Vec<Node>, End), TemplateError> {
        let mut nodes = Vec::new();
        loop {
            let (tag, at) = match self.token()? {
                Token::Eof => return Ok((nodes, End::Eof)),
                Token::Text(t) => {
                    if !t.is_empty() {
                        nodes.push(Node::Text(t));
                    }
                    continue;
                }
                Token::Tag(tag, at) => (tag, at),
            };
            let (word, rest) = split_word(tag);
            match (word, rest) {
                ("else", "") => return Ok((nodes, End::Else(at))),
                ("else", rest) => match split_word(rest) {
                    ("if", cond) => return Ok((nodes, End::ElseIf(self.cond(cond, at)?, at))),
                    _ => return Err(self.err(at, format!("unknown tag {{{{{tag}}}}}"))),
                },
                ("/if", "") => return Ok((nodes, End::Close("if", at))),
                ("/each", "") => return Ok((nodes, End::Close("each", at))),
                ("#if" | "#each", _) if depth >= MAX_DEPTH => {
                    return Err(self.err(at, format!("blocks nested deeper than {MAX_DEPTH}")))
                }
                ("#if", cond) => nodes.push(self.if_block(cond, at, depth)?),
                ("#each", arg) => nodes.push(self.each_block(arg, at, depth)?),
                _ if tag.starts_with(['#', '/']) => {
                    return Err(self.err(at, format!("unknown tag {{{{{tag}}}}}")))
                }
                _ => {
                    let mut lex = Lex(tag);
                    let expr = lex
                        .expr()
                        .and_then(|e| lex.done(e))
                        .map_err(|m| self.err(at, m))?;
                    nodes.push(Node::Insert(expr, at));
                }
            }
        }
    }

    fn cond(&self, text: &str, at: Pos) -> Result<Cond, TemplateError> {
        let mut lex = Lex(text);
        let parsed = lex.expr().and_then(|expr| {
            let equal = if lex.eat("==") {
                Some(true)
            } else if lex.eat("!=") {
                Some(false)
            } else {
                None
            };
            let compare = match equal {
                Some(equal) => Some((
                    equal,
                    lex.string()?
                        .ok_or("expected a \"string\" to compare with")?,
                )),
                None => None,
            };
            lex.done(Cond { expr, compare })
        });
        parsed.map_err(|m| self.err(at, m))
    }

    fn if_block(&mut self, cond: &str, at: Pos, depth: usize) -> Result<Node, TemplateError> {
        let (mut branches, mut cond) = (Vec::new(), Some(self.cond(cond, at)?));
        loop {
            let (body, end) = self.block(depth + 1)?;
            match (cond.take(), end) {
                (Some(c), End::ElseIf(next, _)) => {
                    branches.push((c, body));
                    cond = Some(next);
                }
                (Some(c), End::Else(_)) => branches.push((c, body)),
                (Some(c), End::Close("if", _)) => {
                    branches.push((c, body));
                    return Ok(Node::If(branches, Vec::new(), at));
                }
                (None, End::Close("if", _)) => return Ok(Node::If(branches, body, at)),
                (_, end) => return Err(self.unexpected(end, "{{/if}}", at)),
            }
        }
    }

    fn each_block(&mut self, arg: &str, at: Pos, depth: usize) -> Result<Node, TemplateError> {
        let (path, rest) = split_word(arg);
        let max = match rest.strip_prefix("max=") {
            _ if rest.is_empty() => Some(usize::MAX),
            Some(n) => n.parse().ok().filter(|n| (1..=100_000).contains(n)),
            None => None,
        };
        let max =
            max.ok_or_else(|| self.err(at, format!("expected max=1…100000, not `{rest}`")))?;
        let base = match Lex(path).base().map_err(|m| self.err(at, m))? {
            base @ Base::Path(..) => base,
            _ => return Err(self.err(at, "{{#each}} needs the path of an array")),
        };
        match self.block(depth + 1)? {
            (body, End::Close("each", _)) => Ok(Node::Each(base, max, body, at)),
            (_, end) => Err(self.unexpected(end, "{{/each}}", at)),
        }
    }

    fn unexpected(&self, end: End, expected: &str, opened: Pos) -> TemplateError {
        match end {
            End::Eof => self.err(
                opened,
                format!("this block is never closed: {expected} is missing"),
            ),
            End::Else(at) | End::ElseIf(_, at) => {
                self.err(at, format!("{{{{else}}}} where {expected} was expected"))
            }
            End::Close(what, at) => {
                self.err(at, format!("{{{{/{what}}}}} where {expected} was expected"))
            }
        }
    }
}

/// `text` with each `\` + newline removed, with the next line's leading whitespace.
fn joined(text: &str) -> String {
    let (mut out, mut rest) = (String::with_capacity(text.len()), text);
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after
            .strip_prefix("\r\n")
            .or_else(|| after.strip_prefix('\n'))
        {
            Some(next) => rest = next.trim_start_matches([' ', '\t', '\r', '\n']),
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

/// The inside of a tag, read left to right.
struct Lex<'a>(&'a str);

impl<'a> Lex<'a> {
    fn eat(&mut self, p: &str) -> bool {
        self.0 = self.0.trim_start();
        let found = self.0.starts_with(p);
        if found {
            self.0 = &self.0[p.len()..];
        }
        found
    }

    fn word(&mut self) -> &'a str {
        self.0 = self.0.trim_start();
        let end = self
            .0
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_.@-".contains(c)));
        let (word, rest) = self.0.split_at(end.unwrap_or(self.0.len()));
        self.0 = rest;
        word
    }

    fn string(&mut self) -> Result<Option<String>, String> {
        if !self.eat("\"") {
            return Ok(None);
        }
        let end = self.0.find('"').ok_or("a string with no closing \"")?;
        let s = self.0[..end].to_owned();
        self.0 = &self.0[end + 1..];
        Ok(Some(s))
    }

    fn base(&mut self) -> Result<Base, String> {
        if let Some(s) = self.string()? {
            return Ok(Base::Literal(s));
        }
        let word = self.word();
        let (root, path) = match word {
            "@index" => return Ok(Base::Index),
            "@more" => return Ok(Base::More),
            "@root" | "this" => (word == "@root", ""),
            w => match (w.strip_prefix("@root."), w.strip_prefix("this.")) {
                (Some(p), _) => (true, p),
                (_, Some(p)) => (false, p),
                _ => (false, w),
            },
        };
        let keys: Vec<String> = path
            .split('.')
            .filter(|_| !path.is_empty())
            .map(str::to_owned)
            .collect();
        if word.is_empty() || keys.iter().any(|k| k.is_empty() || k.contains('@')) {
            let next = self
                .0
                .chars()
                .next()
                .map_or(String::new(), |c| format!(" before `{c}`"));
            return Err(format!(
                "expected a variable or a \"string\", not `{word}`{next}"
            ));
        }
        Ok(Base::Path(word.to_owned(), root, keys))
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let (base, mut filters) = (self.base()?, Vec::new());
        while self.eat("|") {
            let name = self.word().to_owned();
            let mut args = Vec::new();
            while self.eat(":") {
                args.push(self.string()?.ok_or("expected a \"string\" after :")?);
            }
            filters.push(match (name.as_str(), &mut args[..]) {
                ("money", []) => Filter::Money,
                ("number", []) => Filter::Number,
                ("label", []) => Filter::Label,
                ("date", []) => Filter::Date,
                ("trim", []) => Filter::Trim,
                ("plural", [one, many]) => {
                    Filter::Plural(std::mem::take(one), std::mem::take(many))
                }
                ("plural", _) => {
                    return Err("plural takes two words: plural:\"line\":\"lines\"".into())
                }
                ("money" | "number" | "label" | "date" | "trim", _) => {
                    return Err(format!("the formatter `{name}` takes no arguments"))
                }
                _ => return Err(format!("unknown formatter `{name}`")),
            });
        }
        Ok(Expr { base, filters })
    }

    fn done<T>(&mut self, value: T) -> Result<T, String> {
        match self.0.trim() {
            "" => Ok(value),
            rest => Err(format!("unexpected `{rest}` in this tag")),
        }
    }
}

// ---------------------------------------------------------------- rendering

struct Render<'a> {
    part: &'a str,
    root: &'a Value,
    /// The elements of the `{{#each}}` loops we are in, with their indexes.
    scope: Vec<(&'a Value, usize)>,
    more: usize,
}

struct Out {
    text: String,
    escape: Escape,
    steps: usize,
    /// The last tag rendered, for errors that have no tag of their own.
    at: Pos,
}

impl Out {
    fn step(&mut self) -> Result<(), String> {
        self.steps += 1;
        match self.steps > MAX_STEPS {
            true => Err(format!("rendering takes more than {MAX_STEPS} steps")),
            false => Ok(()),
        }
    }

    fn push(&mut self, s: &str, escaped: bool) -> Result<(), String> {
        let over = || Err(format!("the output would be over {MAX_OUTPUT_BYTES} bytes"));
        if self.text.len() + s.len() > MAX_OUTPUT_BYTES {
            return over();
        }
        for c in s.chars() {
            match (escaped, self.escape, c) {
                (false, ..) | (_, Escape::None, _) => self.text.push(c),
                (_, _, '&') => self.text.push_str("&amp;"),
                (_, _, '<') => self.text.push_str("&lt;"),
                (_, _, '>') => self.text.push_str("&gt;"),
                (_, Escape::Html, '"') => self.text.push_str("&quot;"),
                (_, Escape::Html, '\'') => self.text.push_str("&#39;"),
                _ => self.text.push(c),
            }
        }
        match self.text.len() > MAX_OUTPUT_BYTES {
            true => over(),
            false => Ok(()),
        }
    }
}

impl<'a> Render<'a> {
    fn nodes(&mut self, nodes: &'a [Node], out: &mut Out) -> Result<(), TemplateError> {
        for node in nodes {
            let at = match node {
                Node::Text(_) => out.at,
                Node::Insert(_, at) | Node::If(_, _, at) | Node::Each(_, _, _, at) => *at,
            };
            out.at = at;
            let part = self.part;
            let fail = |message: String| {
                let (part, (line, column)) = (part.to_owned(), at);
                TemplateError {
                    part,
                    line,
                    column,
                    message,
                }
            };
            out.step().map_err(fail)?;
            match node {
                Node::Text(text) => out.push(text, false).map_err(fail)?,
                Node::Insert(expr, _) => {
                    let text = match self.lookup(&expr.base) {
                        None => Err(format!("unknown variable `{}`", expr.base.name())),
                        Some(v) if v.is_null() => Err(format!(
                            "`{}` is null (test an optional value with {{{{#if}}}})",
                            expr.base.name()
                        )),
                        Some(v) => formatted(&v, expr),
                    };
                    out.push(&text.map_err(fail)?, true).map_err(fail)?;
                }
                Node::If(branches, otherwise, _) => {
                    let mut chosen = otherwise;
                    for (cond, body) in branches {
                        if self.holds(cond).map_err(fail)? {
                            chosen = body;
                            break;
                        }
                    }
                    self.nodes(chosen, out)?;
                }
                Node::Each(base, max, body, _) => {
                    let items = match self.lookup(base) {
                        Some(Cow::Borrowed(Value::Array(items))) => items,
                        None => return Err(fail(format!("unknown variable `{}`", base.name()))),
                        Some(_) => return Err(fail(format!("`{}` is not a list", base.name()))),
                    };
                    for (i, item) in items.iter().take(*max).enumerate() {
                        out.step().map_err(fail)?;
                        self.scope.push((item, i));
                        let done = self.nodes(body, out);
                        self.scope.pop();
                        done?;
                    }
                    self.more = items.len().saturating_sub(*max);
                }
            }
        }
        Ok(())
    }

    fn lookup(&self, base: &Base) -> Option<Cow<'a, Value>> {
        match base {
            Base::Literal(s) => Some(Cow::Owned(Value::String(s.clone()))),
            Base::Index => self.scope.last().map(|&(_, i)| Cow::Owned(Value::from(i))),
            Base::More => Some(Cow::Owned(Value::from(self.more))),
            Base::Path(_, root, keys) => {
                let start = self.scope.last().filter(|_| !root).map(|s| s.0);
                let mut v = start.unwrap_or(self.root);
                for key in keys {
                    v = match v {
                        Value::Object(fields) => fields.get(key)?,
                        Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                        _ => return None,
                    };
                }
                Some(Cow::Borrowed(v))
            }
        }
    }

    fn holds(&self, cond: &Cond) -> Result<bool, String> {
        let value = self.lookup(&cond.expr.base).filter(|v| !v.is_null());
        let Some((equal, literal)) = &cond.compare else {
            return Ok(match value {
                None => false,
                Some(v) if cond.expr.filters.is_empty() => truthy(&v),
                Some(v) => !formatted(&v, &cond.expr)?.is_empty(),
            });
        };
        let text = match value {
            Some(v) if cond.expr.filters.is_empty() => text(&v).ok(),
            Some(v) => Some(formatted(&v, &cond.expr)?),
            None => None,
        };
        Ok((text.as_deref() == Some(literal.as_str())) == *equal)
    }
}

impl Base {
    fn name(&self) -> &str {
        match self {
            Base::Literal(s) | Base::Path(s, ..) => s,
            Base::Index => "@index",
            Base::More => "@more",
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => parse_decimal(n).map_or(true, |d| !d.is_zero()),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err("is null".into()),
        Value::Array(_) => Err("is a list, not text".into()),
        Value::Object(_) => Err("is an object, not text".into()),
    }
}

fn decimal(v: &Value) -> Result<Decimal, String> {
    let number = match v {
        Value::Number(n) => Some(n.clone()),
        Value::String(s) => s.trim().parse::<serde_json::Number>().ok(),
        _ => None,
    };
    number
        .as_ref()
        .and_then(parse_decimal)
        .ok_or_else(|| "is not a number".into())
}

/// The value through the expression's formatters, as text (not yet escaped).
fn formatted(v: &Value, expr: &Expr) -> Result<String, String> {
    let mut v = Cow::Borrowed(v);
    for f in &expr.filters {
        let s = match f {
            Filter::Money => decimal(&v).map(money),
            Filter::Number => decimal(&v).map(|d| d.normalize().to_string()),
            Filter::Label => text(&v).map(|s| label(&s)),
            Filter::Trim => text(&v).map(|s| s.trim().to_owned()),
            Filter::Date => text(&v).and_then(|s| {
                let day = s.get(..10).filter(|d| is_date(d));
                let rest = s.get(10..).unwrap_or("");
                match day {
                    Some(day) if rest.is_empty() || rest.starts_with(['T', 't', ' ']) => {
                        Ok(day.to_owned())
                    }
                    _ => Err("is not a date (YYYY-MM-DD…)".into()),
                }
            }),
            Filter::Plural(one, many) => match &*v {
                Value::Array(a) => Ok(a.len() == 1),
                v => decimal(v).map(|n| n == Decimal::ONE),
            }
            .map(|single| if single { one.clone() } else { many.clone() }),
        };
        v = Cow::Owned(Value::String(
            s.map_err(|m| format!("`{}` {m}", expr.base.name()))?,
        ));
    }
    text(&v).map_err(|m| format!("`{}` {m}", expr.base.name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(source: &str, context: &Value, escape: Escape) -> Result<String, TemplateError> {
        Template::parse(source)?.render(context, escape)
    }

    fn ok(source: &str, context: Value) -> String {
        render(source, &context, Escape::Html).unwrap_or_else(|e| panic!("{source:?}: {e}"))
    }

    fn err(source: &str, context: Value) -> TemplateError {
        match render(source, &context, Escape::Html) {
            Ok(out) => panic!("{source:?} rendered {out:?}"),
            Err(e) => e,
        }
    }

    fn num(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn values_are_escaped_for_the_part_and_text_is_not() {
        let c = json!({"name": "<a href='x'>\"Tom\" & Jerry</a>"});
        let t = Template::parse("<b>{{name}}</b>").unwrap();
        assert_eq!(
            t.render(&c, Escape::Html).unwrap(),
            "<b>&lt;a href=&#39;x&#39;&gt;&quot;Tom&quot; &amp; Jerry&lt;/a&gt;</b>"
        );
        assert_eq!(
            t.render(&c, Escape::Slack).unwrap(),
            "<b>&lt;a href='x'&gt;\"Tom\" &amp; Jerry&lt;/a&gt;</b>"
        );
        assert_eq!(
            t.render(&c, Escape::None).unwrap(),
            "<b><a href='x'>\"Tom\" & Jerry</a></b>"
        );
        assert_eq!(
            ok(r#"{{"<&>"}}"#, json!({})),
            "&lt;&amp;&gt;",
            "literals are escaped too"
        );
    }

    #[test]
    fn tags_in_values_are_never_parsed_again() {
        let c = json!({"a": "{{b}}", "b": "secret", "c": "{{#each x}}"});
        assert_eq!(ok("{{a}} {{c}}", c.clone()), "{{b}} {{#each x}}");
        assert_eq!(render("{{a}}", &c, Escape::None).unwrap(), "{{b}}");
    }

    #[test]
    fn paths_reach_into_objects_and_arrays() {
        let c = json!({"client": {"name": "Ann", "tags": ["x", "y"]}, "n": 3, "ok": true});
        assert_eq!(
            ok("{{client.name}} {{client.tags.1}} {{ n }} {{ok}}", c),
            "Ann y 3 true"
        );
        assert_eq!(
            ok("{{n}}", num(r#"{"n": 7.50}"#)),
            "7.50",
            "numbers keep their text"
        );
    }

    #[test]
    fn a_missing_or_null_variable_is_an_error_naming_it() {
        let e = Template::parse_part("html", "Hi\n  {{client.nme}}")
            .unwrap()
            .render(&json!({"client": {"name": "A"}}), Escape::Html)
            .unwrap_err();
        assert_eq!((e.part.as_str(), e.line, e.column), ("html", 2, 3));
        assert!(e.message.contains("unknown variable `client.nme`"), "{e}");
        assert_eq!(
            e.to_string(),
            "html, line 2, column 3: unknown variable `client.nme`"
        );
        assert!(err("{{x}}", json!({"x": null}))
            .message
            .contains("`x` is null"));
        assert!(err("{{x}}", json!({"x": [1]}))
            .message
            .contains("is a list"));
        assert!(err("{{x}}", json!({"x": {}}))
            .message
            .contains("is an object"));
        assert!(err("{{x.y}}", json!({"x": "s"}))
            .message
            .contains("unknown variable `x.y`"));
        assert!(err("{{@index}}", json!({}))
            .message
            .contains("unknown variable `@index`"));
    }

    #[test]
    fn if_else_if_else_and_equality() {
        let t = Template::parse(
            "{{#if m == \"refund\"}}R{{else if m == \"credit\"}}C{{else if m != \"exchange\"}}?{{else}}E{{/if}}",
        )
        .unwrap();
        let r = |m: Value| t.render(&json!({ "m": m }), Escape::None).unwrap();
        assert_eq!(r(json!("refund")), "R");
        assert_eq!(r(json!("credit")), "C");
        assert_eq!(r(json!("exchange")), "E");
        assert_eq!(r(json!("other")), "?");
        assert_eq!(r(json!(null)), "?", "null equals no string");
        assert_eq!(ok("{{#if n == \"2\"}}two{{/if}}", json!({"n": 2})), "two");
        assert_eq!(
            ok("{{#if missing == \"x\"}}a{{else}}b{{/if}}", json!({})),
            "b"
        );
    }

    #[test]
    fn what_counts_as_false() {
        let t = Template::parse("{{#if v}}T{{else}}F{{/if}}").unwrap();
        let r = |c: Value| t.render(&c, Escape::None).unwrap();
        assert_eq!(r(json!({})), "F", "missing");
        for falsy in [
            json!(null),
            json!(false),
            json!(""),
            json!([]),
            json!({}),
            json!(0),
            num("0.00"),
        ] {
            assert_eq!(r(json!({ "v": falsy })), "F", "{falsy}");
        }
        for truthy in [
            json!(true),
            json!(" "),
            json!([0]),
            json!({"a": 1}),
            json!(1),
            json!("0"),
        ] {
            assert_eq!(r(json!({ "v": truthy })), "T", "{truthy}");
        }
        assert_eq!(
            ok("{{#if n | trim}}[{{n | trim}}]{{/if}}", json!({"n": "  "})),
            ""
        );
        assert_eq!(
            ok("{{#if n | trim}}[{{n | trim}}]{{/if}}", json!({"n": " x "})),
            "[x]"
        );
        assert_eq!(ok("{{#if n | trim}}x{{/if}}", json!({"n": null})), "");
    }

    #[test]
    fn each_with_max_and_more_nested() {
        let c = json!({
            "shop": "S",
            "orders": [
                {"no": "A", "lines": [{"n": 1}, {"n": 2}, {"n": 3}]},
                {"no": "B", "lines": [{"n": 4}]},
                {"no": "C", "lines": []},
            ]
        });
        let t = "{{#each orders max=2}}{{@index}}:{{no}}@{{@root.shop}}[\
                 {{#each lines max=2}}{{n}}{{#if this.n == \"1\"}}!{{/if}},{{/each}}\
                 {{#if @more}}+{{@more}}{{/if}}] {{/each}}\
                 {{#if @more}}and {{@more}} more{{/if}}";
        assert_eq!(ok(t, c), "0:A@S[1!,2,+1] 1:B@S[4,] and 1 more");
        assert_eq!(
            ok(
                "{{#each xs}}{{this}};{{/each}}{{@more}}",
                json!({"xs": ["a", "b"]})
            ),
            "a;b;0"
        );
        assert_eq!(
            ok(
                "{{#each xs max=5}}{{this}}{{/each}}{{#if @more}}more{{/if}}",
                json!({"xs": [1]})
            ),
            "1"
        );
        assert!(err("{{#each xs}}{{/each}}", json!({}))
            .message
            .contains("unknown variable `xs`"));
        assert!(err("{{#each xs}}{{/each}}", json!({"xs": "a"}))
            .message
            .contains("not a list"));
        assert!(err(
            "{{#each xs}}{{shop}}{{/each}}",
            json!({"xs": [{}], "shop": "S"})
        )
        .message
        .contains("unknown variable `shop`"));
    }

    #[test]
    fn formatters() {
        let c = num(
            r#"{"total": 1234567.5, "text_total": "88.7", "qty": 7.00, "frac": 1.250, "big": 1e3,
                "terms": "net_30", "cod": "cod", "at": "2026-11-27T10:00:00+01:00", "day": "2026-02-28",
                "one": 1, "three": 3, "one_list": [1], "lines": [1, 2], "pad": "  x  "}"#,
        );
        let r = |t: &str| render(t, &c, Escape::None).unwrap();
        assert_eq!(
            r("{{total | money}} {{text_total | money}} {{big | money}}"),
            "1,234,567.50 88.70 1,000.00"
        );
        assert_eq!(
            r("{{qty | number}} {{frac | number}} {{big | number}}"),
            "7 1.25 1000"
        );
        assert_eq!(
            r("{{terms | label}}/{{cod | label}}"),
            "Net 30/Cash on delivery"
        );
        assert_eq!(r("{{at | date}} {{day | date}}"), "2026-11-27 2026-02-28");
        assert_eq!(
            r(
                r#"{{one | plural:"line":"lines"}} {{three | plural:"line":"lines"}} {{one_list | plural:"a":"b"}} {{lines | plural:"a":"b"}}"#
            ),
            "line lines a b"
        );
        assert_eq!(r("[{{pad | trim}}] [{{pad | trim | label}}]"), "[x] [X]");
        assert_eq!(
            ok("{{t | label}}", json!({"t": "a_<b>"})),
            "A &lt;b&gt;",
            "formatted text is escaped"
        );
        assert!(err("{{x | money}}", json!({"x": "abc"}))
            .message
            .contains("`x` is not a number"));
        assert!(err("{{x | date}}", json!({"x": "2026-02-30"}))
            .message
            .contains("not a date"));
        assert!(err("{{x | date}}", json!({"x": "2026-02-01x"}))
            .message
            .contains("not a date"));
        assert!(err("{{x | money}}", json!({"x": [1]}))
            .message
            .contains("not a number"));
    }

    #[test]
    fn parse_errors_have_positions() {
        let at = |source: &str| {
            let e = Template::parse(source).unwrap_err();
            (e.line, e.column, e.message)
        };
        let (line, column, m) = at("ok\nab {{x | shout}}");
        assert_eq!((line, column), (2, 4));
        assert!(m.contains("unknown formatter `shout`"), "{m}");
        assert!(at("{{x | money:\"a\"}}").2.contains("takes no arguments"));
        assert!(at("{{x | plural:\"a\"}}").2.contains("two words"));
        let (line, column, m) = at("a\n\n  {{#if x}}never closed");
        assert_eq!((line, column), (3, 3));
        assert!(m.contains("never closed"), "{m}");
        let (line, column, m) = at("{{#if x}}\n{{/each}}");
        assert_eq!((line, column), (2, 1));
        assert!(m.contains("{{/each}} where {{/if}} was expected"), "{m}");
        assert_eq!(at("é{{x}}{{/if}}").1, 7, "columns count characters");
        assert!(at("{{#if x}}{{else}}{{else}}{{/if}}")
            .2
            .contains("{{else}} where"));
        assert!(at("{{#each x}}{{else}}{{/each}}")
            .2
            .contains("{{else}} where {{/each}}"));
        assert!(at("{{else}}").2.contains("{{else}} where the end"));
        assert!(at("{{#unless x}}{{/unless}}")
            .2
            .contains("unknown tag {{#unless x}}"));
        assert!(at("{{> partial}}").2.contains("expected a variable"));
        assert!(at("{{{raw}}}").2.contains("expected a variable"));
        assert!(at("{{&raw}}").2.contains("expected a variable"));
        assert!(at("{{x y}}").2.contains("unexpected `y`"));
        assert!(at("{{#if x == y}}{{/if}}").2.contains("to compare with"));
        assert!(at("{{#each x max=0}}{{/each}}").2.contains("max="));
        assert!(at("{{#each x max=}}{{/each}}").2.contains("max="));
        assert!(at("{{#each \"x\"}}{{/each}}")
            .2
            .contains("path of an array"));
        assert!(at("{{#each @index}}{{/each}}")
            .2
            .contains("path of an array"));
        assert!(at("{{a..b}}").2.contains("expected a variable"));
        assert!(at("{{@nope}}").2.contains("expected a variable"));
        assert!(at("{{}}").2.contains("expected a variable"));
    }

    #[test]
    fn malformed_tags_are_refused() {
        for (source, says) in [
            ("Hi {{name", "no closing }}"),
            ("Hi {{name}", "no closing }}"),
            ("{{a {{b}}", "{{ inside a tag"),
            ("{{\"abc}}", "no closing \""),
            ("{{! comment", "comment with no }}"),
            (
                "{{#if x}}{{#each y}}{{/if}}{{/each}}",
                "{{/if}} where {{/each}}",
            ),
        ] {
            let e = Template::parse(source).unwrap_err();
            assert!(e.message.contains(says), "{source:?}: {e}");
        }
        assert_eq!(ok("a}}b {{! a \"comment\" }}c", json!({})), "a}}b c");
        assert_eq!(ok("{{\"{{\"}}x{{\"}}\"}}", json!({})), "{{x}}");
    }

    #[test]
    fn backslash_newline_joins_lines() {
        let t = "<p>\\\n   {{a}}</p>\\\r\n\t\n<p>b</p>\\ not\\\\\nend\\";
        assert_eq!(ok(t, json!({"a": "A"})), "<p>A</p><p>b</p>\\ not\\end\\");
    }

    #[test]
    fn sizes_depth_and_work_are_bounded() {
        let big = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        assert!(Template::parse(&big)
            .unwrap_err()
            .message
            .contains("byte limit"));
        assert!(Template::parse(&big[1..]).is_ok());

        let nest = |n: usize| format!("{}x{}", "{{#if a}}".repeat(n), "{{/if}}".repeat(n));
        assert_eq!(ok(&nest(MAX_DEPTH), json!({"a": 1})), "x");
        let e = Template::parse(&nest(MAX_DEPTH + 1)).unwrap_err();
        assert!(e.message.contains("nested deeper than 8"), "{e}");
        assert_eq!((e.line, e.column), (1, 1 + 9 * MAX_DEPTH));

        let c = json!({"s": "y".repeat(100_000), "xs": vec![0; 1000]});
        let e = err("{{#each xs}}{{@root.s}}{{/each}}", c.clone());
        assert!(e.message.contains("over 524288 bytes"), "{e}");
        let e = err(
            "{{#each xs}}{{#each @root.xs}}{{#each @root.xs}}{{/each}}{{/each}}{{/each}}",
            c,
        );
        assert!(e.message.contains("steps"), "{e}");
        let e = err("{{s}}", json!({"s": "<".repeat(200_000)}));
        assert!(
            e.message.contains("over 524288 bytes"),
            "escaping counts: {e}"
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        let c = json!({"a": "é", "xs": [1, 2]});
        let pieces = [
            "{{", "}}", "{", "}", "\"", "\\", "\n", "é", "#if", "#each", "/if", "/each", "else",
            " a", " xs", "|", " money", ":", "==", "!", "@more", "@index", "this", "@root.",
            "max=1", "😀", "{{!",
        ];
        let mut seed = 7u64;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(seed % 12) {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                s.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            if let Ok(t) = Template::parse(&s) {
                let _ = t.render(&c, Escape::Html);
            }
        }
    }
}
