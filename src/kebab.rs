//! `kebab_enum!`: a fieldless enum whose every variant has one kebab-case
//! spelling, used in files, case ids and on the command line. It derives
//! serde, `Display`, `FromStr` (with an error listing the known spellings)
//! and an `ALL` constant, so no enum hand-writes that table twice.

macro_rules! kebab_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::kebab::UnknownSpelling;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::kebab::UnknownSpelling {
                        kind: stringify!($name),
                        value: s.to_owned(),
                        known: $name::ALL.iter().map(|v| v.as_str()).collect(),
                    })
            }
        }
    };
}

/// A spelling that names no variant of a `kebab_enum!` enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}` (expected one of: {})", known.join(", "))]
pub struct UnknownSpelling {
    /// The enum's name.
    pub kind: &'static str,
    pub value: String,
    /// Every spelling the enum has.
    pub known: Vec<&'static str>,
}
