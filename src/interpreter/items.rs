//! One item of a list as said ("my ECG", "visit Mexico City", "mum in
//! Edinburgh"): the thing itself, without articles, lead verbs and "done".

/// One item of a list as said, without articles, "done" and the like.
pub(super) fn list_item(item: &str) -> String {
    // "a lipid panel — starting tomorrow": a dash ends the list.
    let item = item.split(" - ").next().unwrap_or("").split(" — ").next().unwrap_or("");
    let item = item.trim().trim_end_matches(['.', '!', '?']);
    // "mum in Edinburgh": the place, not who is there.
    let item = match item.split_once(" in ") {
        Some((who, place)) if !who.chars().any(char::is_uppercase) && place.starts_with(char::is_uppercase) => place,
        _ => item,
    };
    let mut words: Vec<&str> = item.split_whitespace().collect();
    while words.first().is_some_and(|w| {
        matches!(
            w.to_lowercase().as_str(),
            "a" | "an"
                | "the"
                | "my"
                | "our"
                | "and"
                | "also"
                | "then"
                | "me"
                | "just"
                | "only"
                | "some"
                | "visit"
                | "visiting"
                | "to"
                | "do"
                | "book"
                | "get"
        )
    }) {
        words.remove(0);
    }
    // "get my ECG and blood work done"
    while words.len() > 1
        && words.last().is_some_and(|w| {
            matches!(
                w.to_lowercase().as_str(),
                "done" | "booked" | "scheduled" | "sorted" | "please" | "first" | "too" | "as" | "well"
            )
        })
    {
        words.pop();
    }
    words.join(" ")
}
