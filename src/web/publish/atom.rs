//! The Atom 1.0 feed (RFC 4287) of the published messages, newest first.
//!
//! In: resolved messages with their Chinese words, the feed's title and addresses. Out: the XML
//! text. Ids are `tag:` URIs (RFC 4151) minted under [`TAG_AUTHORITY`], so they stay the same when
//! the server moves; each entry links to its CAP file (`alternate`, `application/cap+xml`) and to
//! the public page (`related`).

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::TAG_AUTHORITY;
use super::cap::xml_chars;
use super::text::MessageText;
use super::view::{MessageView, Time};

/// The media type of the feed.
pub const CONTENT_TYPE: &str = "application/atom+xml; charset=utf-8";

/// The feed's own id.
pub fn feed_id() -> String {
    format!("tag:{TAG_AUTHORITY}:public/feed")
}

/// An entry's id.
pub fn entry_id(message_id: &str) -> String {
    format!("tag:{TAG_AUTHORITY}:public/message/{message_id}")
}

/// What the feed says about itself.
#[derive(Debug, Clone)]
pub struct FeedInfo<'a> {
    /// Title (山西省重污染天气预警信息).
    pub title: &'a str,
    /// The feed's author (the top tier's issuing body; entries name their own).
    pub author: &'a str,
    /// Absolute address of the feed.
    pub self_url: &'a str,
    /// Absolute address of the public page.
    pub page_url: &'a str,
    /// The newest entry's time, or now when there is none.
    pub updated: &'a Time,
}

/// The feed; `entries` newest first.
pub fn write(info: &FeedInfo<'_>, entries: &[(&MessageView, &MessageText)]) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = write_feed(&mut w, info, entries);
    let mut out = String::from_utf8(w.into_inner()).unwrap_or_default();
    out.push('\n');
    out
}

fn write_feed(w: &mut Writer<Vec<u8>>, info: &FeedInfo<'_>, entries: &[(&MessageView, &MessageText)]) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("feed")
        .with_attributes([("xmlns", "http://www.w3.org/2005/Atom"), ("xml:lang", "zh-CN")])
        .write_inner_content(|w| {
            text(w, "id", &feed_id())?;
            text(w, "title", info.title)?;
            text(w, "updated", &info.updated.iso)?;
            w.create_element("author").write_inner_content(|w| text(w, "name", info.author))?;
            link(w, "self", "application/atom+xml", info.self_url)?;
            link(w, "alternate", "text/html", info.page_url)?;
            for (m, t) in entries {
                write_entry(w, m, t, info.page_url)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_entry(w: &mut Writer<Vec<u8>>, m: &MessageView, t: &MessageText, page_url: &str) -> io::Result<()> {
    w.create_element("entry").write_inner_content(|w| {
        text(w, "id", &entry_id(&m.id))?;
        text(w, "title", &t.headline)?;
        text(w, "published", &m.sent.iso)?;
        text(w, "updated", &m.sent.iso)?;
        w.create_element("author")
            .write_inner_content(|w| text(w, "name", &t.sender_name))?;
        link(w, "alternate", "application/cap+xml", &m.cap_url)?;
        link(w, "related", "text/html", page_url)?;
        w.create_element("category")
            .with_attributes([("term", m.level.id.as_str()), ("label", m.level.name.as_str())])
            .write_empty()?;
        w.create_element("summary")
            .with_attribute(("type", "text"))
            .write_text_content(BytesText::new(&xml_chars(&t.description)))?;
        let content = format!("{}\n\n{}", t.description, t.instruction);
        w.create_element("content")
            .with_attribute(("type", "text"))
            .write_text_content(BytesText::new(&xml_chars(&content)))?;
        Ok(())
    })?;
    Ok(())
}

fn text(w: &mut Writer<Vec<u8>>, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name).write_text_content(BytesText::new(&xml_chars(value)))?;
    Ok(())
}

fn link(w: &mut Writer<Vec<u8>>, rel: &str, kind: &str, href: &str) -> io::Result<()> {
    w.create_element("link")
        .with_attributes([("rel", rel), ("type", kind), ("href", href)])
        .write_empty()?;
    Ok(())
}
