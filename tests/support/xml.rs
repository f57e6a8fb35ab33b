//! A small XML tree for the strict AWS layer ([`super::strict`]): enough to
//! read the Route53 requests it checks and to read and rewrite the answers
//! moto gives (EC2 query protocol, Route53 REST-XML). Parsing is done by
//! `xmlparser` (already in the AWS SDK's dependency tree); this module only
//! builds the tree and writes it back.

use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    El(Element),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Element {
    /// As written, with its prefix if it has one.
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

/// Parses a document and returns its root element.
pub fn parse(text: &str) -> Result<Element, String> {
    use xmlparser::{ElementEnd, Token, Tokenizer};
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    for token in Tokenizer::from(text) {
        match token.map_err(|e| e.to_string())? {
            Token::ElementStart { prefix, local, .. } => {
                let name = if prefix.is_empty() { local.as_str().to_string() } else { format!("{}:{}", prefix, local) };
                stack.push(Element { name, ..Element::default() });
            }
            Token::Attribute { prefix, local, value, .. } => {
                let name = if prefix.is_empty() { local.as_str().to_string() } else { format!("{}:{}", prefix, local) };
                if let Some(e) = stack.last_mut() {
                    e.attrs.push((name, unescape(value.as_str())));
                }
            }
            Token::ElementEnd { end: ElementEnd::Open, .. } => {}
            Token::ElementEnd { end: ElementEnd::Empty | ElementEnd::Close(..), .. } => {
                let done = stack.pop().ok_or("an end tag without a start")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::El(done)),
                    None => root = Some(done),
                }
            }
            Token::Text { text } => {
                if let Some(e) = stack.last_mut()
                    && !text.as_str().trim().is_empty()
                {
                    e.children.push(Node::Text(unescape(text.as_str())));
                }
            }
            Token::Cdata { text, .. } => {
                if let Some(e) = stack.last_mut() {
                    e.children.push(Node::Text(text.as_str().to_string()));
                }
            }
            _ => {}
        }
    }
    root.ok_or_else(|| "no root element".to_string())
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let c = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

impl Element {
    pub fn new(name: &str) -> Element {
        Element { name: name.to_string(), ..Element::default() }
    }

    /// An element holding only `text`.
    pub fn with_text(name: &str, text: &str) -> Element {
        Element { name: name.to_string(), attrs: Vec::new(), children: vec![Node::Text(text.to_string())] }
    }

    /// The name without its prefix.
    pub fn local(&self) -> &str {
        self.name.rsplit(':').next().unwrap_or(&self.name)
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::El(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::El(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.local() == name)
    }

    pub fn child_mut(&mut self, name: &str) -> Option<&mut Element> {
        self.elements_mut().find(|e| e.local() == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.local() == name)
    }

    /// The element at a path of child names below this one.
    pub fn at(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |e, name| e.child(name))
    }

    pub fn at_mut(&mut self, path: &[&str]) -> Option<&mut Element> {
        let mut e = self;
        for name in path {
            e = e.child_mut(name)?;
        }
        Some(e)
    }

    /// Every element at the end of a path, where each step may match several
    /// children: `["instancesSet", "item"]`.
    pub fn all<'a>(&'a self, path: &[&str]) -> Vec<&'a Element> {
        let mut level = vec![self];
        for name in path {
            level = level.into_iter().flat_map(|e| e.elements().filter(|c| c.local() == *name)).collect();
        }
        level
    }

    /// The concatenated text of this element's own text nodes.
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::El(_) => None,
            })
            .collect()
    }

    /// The text of the child `name`, if there is such a child.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.child(name).map(Element::text)
    }

    pub fn set_text(&mut self, text: &str) {
        self.children = if text.is_empty() { Vec::new() } else { vec![Node::Text(text.to_string())] };
    }

    /// Sets the text of the child `name`, adding the child if it is missing.
    pub fn set_child_text(&mut self, name: &str, text: &str) {
        match self.child_mut(name) {
            Some(c) => c.set_text(text),
            None => self.children.push(Node::El(Element::with_text(name, text))),
        }
    }

    pub fn remove_children(&mut self, name: &str) {
        self.children.retain(|n| !matches!(n, Node::El(e) if e.local() == name));
    }

    /// Removes `name` elements anywhere below this one.
    pub fn remove_descendants(&mut self, name: &str) {
        self.remove_children(name);
        for c in self.elements_mut() {
            c.remove_descendants(name);
        }
    }

    pub fn push(&mut self, e: Element) {
        self.children.push(Node::El(e));
    }

    /// The document: an XML declaration and this element.
    pub fn to_document(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.write(&mut out);
        out
    }

    pub fn write(&self, out: &mut String) {
        let _ = write!(out, "<{}", self.name);
        for (k, v) in &self.attrs {
            let _ = write!(out, " {k}=\"{}\"", escape(v));
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for c in &self.children {
            match c {
                Node::El(e) => e.write(out),
                Node::Text(t) => out.push_str(&escape(t)),
            }
        }
        let _ = write!(out, "</{}>", self.name);
    }
}
