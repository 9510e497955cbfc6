//! The direct deserialization of Package#2: `{"CMD": [[name, params...],
//! ...], ...}`, other members ignored.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Command, CommandError, Package2};

/// Prefix of the messages of shape errors, stripped again for
/// [`super::PackageError::Shape`].
const SHAPE: &str = "shape: ";

fn shape<E: de::Error>(reason: impl fmt::Display) -> E {
    E::custom(format_args!("{SHAPE}{reason}"))
}

/// The reason of a shape error, without serde_json's position suffix.
pub(super) fn shape_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = text.strip_prefix(SHAPE).unwrap_or(&text);
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}

pub(super) struct PackageVisitor {
    /// The size of the package, from which the number of commands is
    /// guessed so that their vector is allocated once.
    pub(super) input_len: usize,
}

impl<'de> Visitor<'de> for PackageVisitor {
    type Value = Package2;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Package#2 object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Package2, A::Error> {
        let mut commands = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "CMD" {
                commands = Some(map.next_value_seed(Commands {
                    input_len: self.input_len,
                })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let commands =
            commands.ok_or_else(|| shape::<A::Error>("missing the required `CMD` member"))?;
        Ok(Package2 { commands })
    }

    // Anything but an object.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Package2, E> {
        Err(shape("not a JSON object"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Package2, E> {
        Err(shape("not a JSON object"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Package2, E> {
        Err(shape("not a JSON object"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Package2, E> {
        Err(shape("not a JSON object"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Package2, E> {
        Err(shape("not a JSON object"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Package2, E> {
        Err(shape("not a JSON object"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Package2, A::Error> {
        Err(shape("not a JSON object"))
    }
}

/// The `CMD` array.
struct Commands {
    input_len: usize,
}

impl<'de> DeserializeSeed<'de> for Commands {
    type Value = Vec<Result<Command, CommandError>>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Commands {
    type Value = Vec<Result<Command, CommandError>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the CMD array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // A command takes 60 bytes or more of JSON but for END and the
        // like; the guess is bounded so a large input cannot make it
        // reserve much more than its commands need.
        let guess = seq.size_hint().unwrap_or(self.input_len / 60);
        let mut out = Vec::with_capacity(guess.clamp(4, 4096));
        // One buffer for the strings of every command, cleared each time.
        let mut strings = Vec::with_capacity(8);
        while let Some(cmd) = seq.next_element_seed(OneCommand {
            index: out.len(),
            strings: &mut strings,
        })? {
            out.push(cmd);
        }
        Ok(out)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(shape("`CMD` is not an array"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(shape("`CMD` is not an array"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(shape("`CMD` is not an array"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(shape("`CMD` is not an array"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(shape("`CMD` is not an array"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(shape("`CMD` is not an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(shape("`CMD` is not an array"))
    }
}

/// One command array, `CMD[index]`; `strings` is scratch space.
struct OneCommand<'a, 'de> {
    index: usize,
    strings: &'a mut Vec<Cow<'de, str>>,
}

impl OneCommand<'_, '_> {
    fn not_an_array<E: de::Error>(&self) -> E {
        shape(format_args!("CMD[{}] is not an array", self.index))
    }
}

impl<'de> DeserializeSeed<'de> for OneCommand<'_, 'de> {
    type Value = Result<Command, CommandError>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OneCommand<'_, 'de> {
    type Value = Result<Command, CommandError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a command array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let strings = self.strings;
        strings.clear();
        let mut not_a_string = None;
        while let Some(e) = seq.next_element::<Element<'de>>()? {
            match e {
                Element::Str(s) if not_a_string.is_none() => strings.push(s),
                Element::Str(_) => {}
                Element::Other => {
                    not_a_string.get_or_insert(strings.len());
                }
            }
        }
        if let Some(index) = not_a_string {
            return Ok(Err(CommandError::NotAString { index }));
        }
        let Some((name, params)) = strings.split_first() else {
            return Ok(Err(CommandError::Empty));
        };
        Ok(Command::from_parts(name, params))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.not_an_array())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.not_an_array())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.not_an_array())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.not_an_array())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.not_an_array())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(self.not_an_array())
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.not_an_array())
    }
}

/// One element of a command array: a string (borrowed when it has no
/// escape), or anything else, which is skipped.
enum Element<'de> {
    Str(Cow<'de, str>),
    Other,
}

impl<'de> de::Deserialize<'de> for Element<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a command name or parameter")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Element<'de>, E> {
        Ok(Element::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Element<'de>, E> {
        Ok(Element::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Element<'de>, E> {
        Ok(Element::Str(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Element<'de>, E> {
        Ok(Element::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Element<'de>, E> {
        Ok(Element::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Element<'de>, E> {
        Ok(Element::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Element<'de>, E> {
        Ok(Element::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Element<'de>, E> {
        Ok(Element::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Element::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Element::Other)
    }
}
