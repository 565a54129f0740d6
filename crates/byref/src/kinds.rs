//! The class names pickled proxies carry (a wire format, like handles and frames): a common
//! class by a small code, any other by its `module:qualname`, so that `isinstance` answers for
//! an unresolved proxy without fetching its target.

/// The classes proxies most often stand for, by code (their index). Append only: a code means
/// the same class in every version.
pub const COMMON_KINDS: [&str; 23] = [
    "builtins:dict",
    "builtins:list",
    "builtins:tuple",
    "builtins:str",
    "builtins:bytes",
    "builtins:bytearray",
    "builtins:int",
    "builtins:float",
    "builtins:set",
    "builtins:frozenset",
    "builtins:bool",
    "builtins:complex",
    "numpy:ndarray",
    "pandas.core.frame:DataFrame",
    "pandas.core.series:Series",
    "torch:Tensor",
    "xarray.core.dataarray:DataArray",
    "xarray.core.dataset:Dataset",
    "pyarrow.lib:Table",
    "polars.dataframe.frame:DataFrame",
    "collections:OrderedDict",
    "collections:defaultdict",
    "collections:deque",
];

/// The code a pickled proxy carries for the class `name`, if it is a common one.
pub fn code_of(name: &str) -> Option<u8> {
    COMMON_KINDS
        .iter()
        .position(|&common| common == name)
        .map(|code| code as u8)
}

/// The class name `code` stands for; `None` for a code this version does not know (a newer
/// byref's): the proxy then answers `isinstance` by fetching.
pub fn name_of(code: i64) -> Option<&'static str> {
    usize::try_from(code)
        .ok()
        .and_then(|code| COMMON_KINDS.get(code).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_common_class_has_the_code_of_its_place() {
        for (code, name) in COMMON_KINDS.iter().enumerate() {
            assert_eq!(code_of(name), Some(code as u8));
            assert_eq!(name_of(code as i64), Some(*name));
        }
    }

    #[test]
    fn codes_keep_their_meaning() {
        // Pickles made by earlier versions carry these codes.
        assert_eq!(name_of(0), Some("builtins:dict"));
        assert_eq!(name_of(12), Some("numpy:ndarray"));
        assert_eq!(name_of(22), Some("collections:deque"));
    }

    #[test]
    fn unknown_names_and_codes_have_none() {
        assert_eq!(code_of("mymodule:Thing"), None);
        assert_eq!(name_of(-1), None);
        assert_eq!(name_of(COMMON_KINDS.len() as i64), None);
    }
}
