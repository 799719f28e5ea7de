//! Emission species (排放物种, 污染物种类): what the reduction list counts in t/day and the 10/20/30 %
//! targets cover — SO2, NOx, PM (particulate matter), VOCs — and [`PerSpecies`], one number per
//! species. Not the air pollutants of HJ 633 (PM2.5, PM10, O3 …): those are
//! [`crate::domain::aqi::Pollutant`].
//!
//! Adding a species is a change to this file: a variant of [`Species`] (in file order), its place in
//! [`Species::ALL`] and its arms in `id`, `label` and `name_zh`. Values, file columns
//! (`so2,nox,pm,vocs`), JSON and YAML keys, tables and texts all follow [`Species::ALL`]. What
//! then needs numbers for it is data: the shipped measure defaults (a target per level), the list
//! generator's industry tables (a baseline range), and the tests that spell values out
//! ([`PerSpecies::new`]) or pin today's file headers.
//!
//! Serialized, a [`PerSpecies`] is the map `{"so2": …, "nox": …, "pm": …, "vocs": …}`, every species
//! present, in [`Species::ALL`] order; reading it needs every species and skips other keys. A
//! [`PartialPerSpecies`] is the same map as an input gives it: any species may be left out, other
//! keys are refused.

use std::fmt;
use std::ops::{Add, AddAssign, Index, IndexMut, Mul};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An emission species whose emissions the list tracks and the 10/20/30 % targets cover.
/// Serialized as its [`id`](Species::id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Species {
    /// 二氧化硫.
    So2,
    /// 氮氧化物.
    Nox,
    /// 颗粒物 (particulate matter).
    Pm,
    /// 挥发性有机物.
    Vocs,
}

impl Species {
    /// All of them, in the usual (and file) order; each at its [`index`](Species::index).
    pub const ALL: [Species; 4] = [Species::So2, Species::Nox, Species::Pm, Species::Vocs];

    /// How many there are.
    pub const COUNT: usize = Species::ALL.len();

    /// Their ids, in [`Species::ALL`] order (`so2`, `nox`, `pm`, `vocs`): the file columns and keys.
    pub const IDS: [&'static str; Species::COUNT] = {
        let mut ids = [""; Species::COUNT];
        let mut i = 0;
        while i < Species::COUNT {
            ids[i] = Species::ALL[i].id();
            i += 1;
        }
        ids
    };

    /// Position in [`Species::ALL`] (and in a [`PerSpecies`]).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Id in files and JSON (`so2`, `nox`, `pm`, `vocs`).
    pub const fn id(self) -> &'static str {
        match self {
            Species::So2 => "so2",
            Species::Nox => "nox",
            Species::Pm => "pm",
            Species::Vocs => "vocs",
        }
    }

    /// Label (`SO2`, `NOx`, `PM`, `VOCs`).
    pub const fn label(self) -> &'static str {
        match self {
            Species::So2 => "SO2",
            Species::Nox => "NOx",
            Species::Pm => "PM",
            Species::Vocs => "VOCs",
        }
    }

    /// Chinese name (`二氧化硫`, `氮氧化物`, `颗粒物`, `挥发性有机物`).
    pub const fn name_zh(self) -> &'static str {
        match self {
            Species::So2 => "二氧化硫",
            Species::Nox => "氮氧化物",
            Species::Pm => "颗粒物",
            Species::Vocs => "挥发性有机物",
        }
    }

    /// The species with this [`id`](Species::id).
    pub fn from_id(id: &str) -> Option<Species> {
        Species::ALL.into_iter().find(|s| s.id() == id)
    }
}

// Each species sits at its index in `ALL`, so `ALL` lists them all, once, in declaration order.
const _: () = {
    let mut i = 0;
    while i < Species::COUNT {
        assert!(Species::ALL[i].index() == i);
        i += 1;
    }
};

/// A file header with the species columns ([`Species::IDS`]) between `before` and `after`; `N` is
/// the whole length (checked at compile time).
pub(crate) const fn columns_around_species<const N: usize>(before: &[&'static str], after: &[&'static str]) -> [&'static str; N] {
    assert!(before.len() + Species::COUNT + after.len() == N);
    let mut out = [""; N];
    let mut i = 0;
    while i < before.len() {
        out[i] = before[i];
        i += 1;
    }
    let mut j = 0;
    while j < Species::COUNT {
        out[before.len() + j] = Species::IDS[j];
        j += 1;
    }
    let mut k = 0;
    while k < after.len() {
        out[before.len() + Species::COUNT + k] = after[k];
        k += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// PerSpecies
// ---------------------------------------------------------------------------------------------

/// One number per species: emissions in t/day, or fractions, or percentages (the field that holds
/// it says which). Indexed by [`Species`]; `+` and `*` work species by species.
#[derive(Clone, Copy, Default, PartialEq)]
pub struct PerSpecies([f64; Species::COUNT]);

impl PerSpecies {
    /// Zero for every species.
    pub const ZERO: PerSpecies = PerSpecies([0.0; Species::COUNT]);

    /// The values in [`Species::ALL`] order.
    pub const fn new(values: [f64; Species::COUNT]) -> PerSpecies {
        PerSpecies(values)
    }

    /// The same value for every species.
    pub const fn splat(v: f64) -> PerSpecies {
        PerSpecies([v; Species::COUNT])
    }

    /// `f(species)` for each species, called in [`Species::ALL`] order.
    pub fn from_fn(f: impl FnMut(Species) -> f64) -> PerSpecies {
        PerSpecies(Species::ALL.map(f))
    }

    /// `(species, value)` in [`Species::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Species, f64)> + use<> {
        Species::ALL.into_iter().zip(self.0)
    }

    /// Applies `f` to each value.
    pub fn map(&self, f: impl FnMut(f64) -> f64) -> PerSpecies {
        PerSpecies(self.0.map(f))
    }

    /// Combines two, species by species.
    pub fn zip(&self, other: &PerSpecies, mut f: impl FnMut(f64, f64) -> f64) -> PerSpecies {
        PerSpecies::from_fn(|s| f(self[s], other[s]))
    }

    /// Whether every value is zero.
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|v| *v == 0.0)
    }
}

impl Index<Species> for PerSpecies {
    type Output = f64;

    fn index(&self, s: Species) -> &f64 {
        &self.0[s.index()]
    }
}

impl IndexMut<Species> for PerSpecies {
    fn index_mut(&mut self, s: Species) -> &mut f64 {
        &mut self.0[s.index()]
    }
}

/// Sum, species by species.
impl Add for PerSpecies {
    type Output = PerSpecies;

    fn add(self, other: PerSpecies) -> PerSpecies {
        self.zip(&other, |a, b| a + b)
    }
}

impl AddAssign for PerSpecies {
    fn add_assign(&mut self, other: PerSpecies) {
        *self = *self + other;
    }
}

/// Product, species by species (baseline × fraction).
impl Mul for PerSpecies {
    type Output = PerSpecies;

    fn mul(self, other: PerSpecies) -> PerSpecies {
        self.zip(&other, |a, b| a * b)
    }
}

impl std::iter::Sum for PerSpecies {
    fn sum<I: Iterator<Item = PerSpecies>>(iter: I) -> PerSpecies {
        iter.fold(PerSpecies::ZERO, |acc, x| acc + x)
    }
}

impl<'a> std::iter::Sum<&'a PerSpecies> for PerSpecies {
    fn sum<I: Iterator<Item = &'a PerSpecies>>(iter: I) -> PerSpecies {
        iter.copied().sum()
    }
}

/// `PerSpecies { so2: 1.0, nox: 2.0, … }`.
impl fmt::Debug for PerSpecies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("PerSpecies");
        for (s, v) in self.iter() {
            d.field(s.id(), &v);
        }
        d.finish()
    }
}

/// `{"so2": …, "nox": …, "pm": …, "vocs": …}`, in [`Species::ALL`] order.
impl Serialize for PerSpecies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("PerSpecies", Species::COUNT)?;
        for (sp, v) in self.iter() {
            st.serialize_field(sp.id(), &v)?;
        }
        st.end()
    }
}

/// The map [`Serialize`] writes: every species required, a repeated one an error, other keys
/// skipped. (Or, as a derived struct reads it, a sequence in [`Species::ALL`] order.)
impl<'de> Deserialize<'de> for PerSpecies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;

        impl<'de> Visitor<'de> for V {
            type Value = PerSpecies;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct PerSpecies")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PerSpecies, A::Error> {
                let mut out = PerSpecies::ZERO;
                for (i, s) in Species::ALL.into_iter().enumerate() {
                    out[s] = seq.next_element()?.ok_or_else(|| {
                        de::Error::invalid_length(i, &format!("struct PerSpecies with {} elements", Species::COUNT).as_str())
                    })?;
                }
                Ok(out)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PerSpecies, A::Error> {
                let values = read_map::<A, f64>(map, false)?;
                let mut out = PerSpecies::ZERO;
                for s in Species::ALL {
                    out[s] = values[s.index()].ok_or_else(|| de::Error::missing_field(s.id()))?;
                }
                Ok(out)
            }
        }

        d.deserialize_struct("PerSpecies", &Species::IDS, V)
    }
}

// ---------------------------------------------------------------------------------------------
// PartialPerSpecies
// ---------------------------------------------------------------------------------------------

/// Values for some species, as an input names them (`baseline: { so2: 0.5, nox: 1.2 }`, a measure's
/// `reduction`, an API body): a map from species id to `T`, any species left out, a repeated one or
/// another key an error (``unknown field `co2`, expected one of `so2`, …``). A `null` value is read
/// as `T` reads it (so `T = Option<…>` takes it as left out).
#[derive(Debug, Clone, PartialEq)]
pub struct PartialPerSpecies<T>([Option<T>; Species::COUNT]);

impl<T> PartialPerSpecies<T> {
    /// The value given for a species.
    pub fn get(&self, s: Species) -> Option<&T> {
        self.0[s.index()].as_ref()
    }
}

impl<T> Default for PartialPerSpecies<T> {
    fn default() -> Self {
        PartialPerSpecies(std::array::from_fn(|_| None))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for PartialPerSpecies<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = PartialPerSpecies<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a map of {}", Species::IDS.join(", "))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = PartialPerSpecies::default();
                for (i, slot) in out.0.iter_mut().enumerate() {
                    let v = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &format!("a sequence of {} elements", Species::COUNT).as_str()))?;
                    *slot = Some(v);
                }
                Ok(out)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                read_map(map, true).map(PartialPerSpecies)
            }
        }

        d.deserialize_struct("PartialPerSpecies", &Species::IDS, V(std::marker::PhantomData))
    }
}

// ---------------------------------------------------------------------------------------------
// Reading species maps
// ---------------------------------------------------------------------------------------------

/// The value of each species a map names; a species named twice is an error, another key is an
/// error when `deny_unknown`, else skipped.
fn read_map<'de, A: MapAccess<'de>, T: Deserialize<'de>>(mut map: A, deny_unknown: bool) -> Result<[Option<T>; Species::COUNT], A::Error> {
    let mut values: [Option<T>; Species::COUNT] = std::array::from_fn(|_| None);
    while let Some(key) = map.next_key_seed(KeySeed { deny_unknown })? {
        match key {
            Some(s) => {
                let slot = &mut values[s.index()];
                if slot.is_some() {
                    return Err(de::Error::duplicate_field(s.id()));
                }
                *slot = Some(map.next_value()?);
            }
            None => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(values)
}

/// A key of a species map: `Some(species)`, or `None` for another key (refused when
/// `deny_unknown`). Reads ids, their bytes, or indexes into [`Species::ALL`], as a derived struct
/// reads its field names.
struct KeySeed {
    deny_unknown: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<Species>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Option<Species>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        match usize::try_from(v).ok().and_then(|i| Species::ALL.get(i)) {
            Some(s) => Ok(Some(*s)),
            None if self.deny_unknown => Err(E::invalid_value(
                Unexpected::Unsigned(v),
                &format!("field index 0 <= i < {}", Species::COUNT).as_str(),
            )),
            None => Ok(None),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match Species::from_id(v) {
            Some(s) => Ok(Some(s)),
            None if self.deny_unknown => Err(E::unknown_field(v, &Species::IDS)),
            None => Ok(None),
        }
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        match std::str::from_utf8(v).ok().and_then(Species::from_id) {
            Some(s) => Ok(Some(s)),
            None if self.deny_unknown => Err(E::unknown_field(&String::from_utf8_lossy(v), &Species::IDS)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_saphyr::Spanned;

    /// `PerPollutant` as it was derived before `PerSpecies` (the stored and served shape).
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct OldPerPollutant {
        so2: f64,
        nox: f64,
        pm: f64,
        vocs: f64,
    }

    /// The YAML inputs' `RawPer` as it was derived before [`PartialPerSpecies`].
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct OldRawPer {
        so2: Option<Spanned<f64>>,
        nox: Option<Spanned<f64>>,
        pm: Option<Spanned<f64>>,
        vocs: Option<Spanned<f64>>,
    }

    /// The API's `reductions` body as it was derived before.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct OldReductions {
        #[serde(default)]
        so2: f64,
        #[serde(default)]
        nox: f64,
        #[serde(default)]
        pm: f64,
        #[serde(default)]
        vocs: f64,
    }

    #[test]
    fn ids_labels_and_names_are_in_one_place_and_serde_uses_the_ids() {
        assert_eq!(Species::IDS, ["so2", "nox", "pm", "vocs"]);
        assert_eq!(Species::ALL.map(Species::label), ["SO2", "NOx", "PM", "VOCs"]);
        assert_eq!(
            Species::ALL.map(Species::name_zh),
            ["二氧化硫", "氮氧化物", "颗粒物", "挥发性有机物"]
        );
        for s in Species::ALL {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.id()));
            assert_eq!(serde_json::from_str::<Species>(&format!("\"{}\"", s.id())).unwrap(), s);
            assert_eq!(Species::from_id(s.id()), Some(s));
        }
        assert_eq!(Species::from_id("pm25"), None);
    }

    #[test]
    fn per_species_round_trips_the_old_json_shape_byte_for_byte() {
        let old = r#"{"so2":0.4,"nox":1.1,"pm":0.0,"vocs":0.05}"#;
        let v: PerSpecies = serde_json::from_str(old).unwrap();
        assert_eq!(
            (v[Species::So2], v[Species::Nox], v[Species::Pm], v[Species::Vocs]),
            (0.4, 1.1, 0.0, 0.05)
        );
        assert_eq!(serde_json::to_string(&v).unwrap(), old);
        // As the derived struct wrote and read it, pretty and compact, in a record and alone.
        let was = OldPerPollutant {
            so2: 1.0,
            nox: 2.5,
            pm: 1e-9,
            vocs: 12345.678,
        };
        let now = PerSpecies::from_fn(|s| [1.0, 2.5, 1e-9, 12345.678][s.index()]);
        assert_eq!(serde_json::to_string(&now).unwrap(), serde_json::to_string(&was).unwrap());
        assert_eq!(
            serde_json::to_string_pretty(&now).unwrap(),
            serde_json::to_string_pretty(&was).unwrap()
        );
        assert_eq!(serde_json::to_value(now).unwrap(), serde_json::to_value(&was).unwrap());
        assert_eq!(serde_saphyr::to_string(&now).unwrap(), serde_saphyr::to_string(&was).unwrap());
        assert_eq!(
            serde_json::from_value::<PerSpecies>(serde_json::to_value(&was).unwrap()).unwrap(),
            now
        );
    }

    #[test]
    fn per_species_reads_and_refuses_what_the_derived_struct_did() {
        for text in [
            r#"{"so2":1,"nox":2,"pm":3,"vocs":4}"#,
            r#"{"vocs":4,"pm":3,"nox":2,"so2":1}"#,
            r#"{"so2":1,"nox":2,"pm":3,"vocs":4,"co2":9,"extra":{"a":[1]}}"#,
            r#"[1,2,3,4]"#,
            r#"{"so2":1,"nox":2,"pm":3}"#,
            r#"{"nox":2,"pm":3,"vocs":4}"#,
            r#"{"so2":1,"so2":1,"nox":2,"pm":3,"vocs":4}"#,
            r#"{"so2":"1","nox":2,"pm":3,"vocs":4}"#,
            r#"{"so2":null,"nox":2,"pm":3,"vocs":4}"#,
            r#"[1,2,3]"#,
            r#"{}"#,
        ] {
            let old = serde_json::from_str::<OldPerPollutant>(text).map_err(|e| e.to_string());
            let new = serde_json::from_str::<PerSpecies>(text).map_err(|e| e.to_string());
            match (old, new) {
                (Ok(o), Ok(n)) => assert_eq!(serde_json::to_string(&o).unwrap(), serde_json::to_string(&n).unwrap(), "{text}"),
                (Err(o), Err(n)) => assert_eq!(o.replace("struct OldPerPollutant", "struct PerSpecies"), n, "{text}"),
                (o, n) => panic!("{text}: before {o:?}, now {n:?}"),
            }
        }
    }

    #[test]
    fn partial_per_species_reads_yaml_as_the_derived_raw_struct_did() {
        /// Per species: the value and where it was (line, column), if given.
        type Read = Vec<Option<(f64, usize, usize)>>;
        fn old(text: &str) -> Result<Read, String> {
            let r: OldRawPer = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
            let at = |x: &Option<Spanned<f64>>| {
                x.as_ref()
                    .map(|v| (v.value, v.referenced.line() as usize, v.referenced.column() as usize))
            };
            Ok(vec![at(&r.so2), at(&r.nox), at(&r.pm), at(&r.vocs)])
        }
        fn new(text: &str) -> Result<Read, String> {
            let r: PartialPerSpecies<Option<Spanned<f64>>> = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
            Ok(Species::ALL
                .iter()
                .map(|s| {
                    r.get(*s)
                        .and_then(Option::as_ref)
                        .map(|v| (v.value, v.referenced.line() as usize, v.referenced.column() as usize))
                })
                .collect())
        }
        for text in [
            "{ so2: 10, nox: 10, pm: 10, vocs: 10 }\n",
            "{ so2: 0.2 }\n",
            "so2: 1\nvocs: 0.5\n",
            "{}\n",
            "{ so2: ~, nox: 1 }\n",
            "{ so2: 1, co2: 2 }\n",
            "{ so2: 1, so2: 2 }\n",
            "{ so2: x }\n",
            "5\n",
            "[1, 2, 3, 4]\n",
        ] {
            match (old(text), new(text)) {
                (Ok(o), Ok(n)) => assert_eq!(o, n, "{text}"),
                (Err(o), Err(n)) => assert_eq!(
                    o.replace("struct OldRawPer", &format!("a map of {}", Species::IDS.join(", "))),
                    n,
                    "{text}"
                ),
                (o, n) => panic!("{text}: before {o:?}, now {n:?}"),
            }
        }
    }

    #[test]
    fn partial_per_species_reads_api_bodies_as_the_derived_struct_did() {
        for text in [
            r#"{"so2":0.3,"nox":0.5}"#,
            r#"{"so2":1}"#,
            r#"{}"#,
            r#"{"so2":1,"co2":2}"#,
            r#"{"so2":1,"so2":2}"#,
            r#"{"so2":null}"#,
            r#"{"so2":"1"}"#,
            r#"5"#,
        ] {
            let old = serde_json::from_str::<OldReductions>(text)
                .map(|r| [r.so2, r.nox, r.pm, r.vocs])
                .map_err(|e| e.to_string());
            let new = serde_json::from_str::<PartialPerSpecies<f64>>(text)
                .map(|r| Species::ALL.map(|s| r.get(s).copied().unwrap_or(0.0)))
                .map_err(|e| e.to_string());
            match (old, new) {
                (Ok(o), Ok(n)) => assert_eq!(o, n, "{text}"),
                (Err(o), Err(n)) => assert_eq!(
                    o.replace("struct OldReductions", &format!("a map of {}", Species::IDS.join(", "))),
                    n,
                    "{text}"
                ),
                (o, n) => panic!("{text}: before {o:?}, now {n:?}"),
            }
        }
    }

    #[test]
    fn arithmetic_and_indexing_go_species_by_species() {
        let a = PerSpecies::from_fn(|s| s.index() as f64 + 1.0);
        let b = PerSpecies::splat(0.5);
        assert_eq!((a + b).iter().map(|(_, v)| v).collect::<Vec<_>>(), [1.5, 2.5, 3.5, 4.5]);
        assert_eq!((a * b)[Species::Vocs], 2.0);
        assert_eq!([a, b, b].iter().sum::<PerSpecies>(), a + PerSpecies::splat(1.0));
        let mut c = PerSpecies::ZERO;
        assert!(c.is_zero() && c == PerSpecies::default());
        c[Species::Pm] = 2.0;
        c += a;
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            [(Species::So2, 1.0), (Species::Nox, 2.0), (Species::Pm, 5.0), (Species::Vocs, 4.0)]
        );
        assert_eq!(format!("{c:?}"), "PerSpecies { so2: 1.0, nox: 2.0, pm: 5.0, vocs: 4.0 }");
    }

    #[test]
    fn columns_put_the_species_between() {
        const C: [&str; 3 + Species::COUNT] = columns_around_species(&["a", "b"], &["z"]);
        assert_eq!(C, ["a", "b", "so2", "nox", "pm", "vocs", "z"]);
    }
}
