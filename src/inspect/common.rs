//! Shared helpers: typed access to JSON values with Go's decoding rules, path normalization,
//! globbing, image references, users, capabilities, sizes, labels and query parameters, one
//! module each.

mod images;
mod json;
mod labels;
mod names;
mod paths;
mod query;
mod sizes;
mod users;

pub(crate) use images::{image_matches, normalize_image, ImageRef};
pub(crate) use json::{
    array, boolean, canon, deny, deny_rule, int, int64, object, parse_body, set_keys, str_list,
    str_map, str_slice, string, strukt,
};
pub(crate) use labels::{check_labels, local_tmpfs_opts_only};
pub(crate) use names::{glob, is_hex, is_host_like, valid_object_name};
pub(crate) use paths::{check_target, clean_path, host_path_allowed, is_under};
pub use query::go_bool;
pub(crate) use query::{
    all, check_query_keys, check_query_repeats, first, qdeny, qdeny_rule, query_int,
};
pub(crate) use sizes::{kernel_size, ram_in_bytes};
pub(crate) use users::{check_user_and_image, normalize_cap, user_is_root};
