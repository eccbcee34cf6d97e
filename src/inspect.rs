//! Deep inspection of request bodies that can change the host's security (being written).
