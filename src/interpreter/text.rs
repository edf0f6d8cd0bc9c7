//! A message prepared for the rules: common typos fixed, a lowercase copy
//! with the same byte offsets, tokens, and the dates it mentions.

use super::dates::{self, DateMention, Token};
use chrono::NaiveDate;

const TYPOS: &[(&str, &str)] = &[
    ("onbaord", "onboard"),
    ("wat", "what"),
    ("whats", "what's"),
    ("shwo", "show"),
    ("mondy", "monday"),
    ("wendsday", "wednesday"),
    ("frday", "friday"),
    ("fridy", "friday"),
    ("tuseday", "tuesday"),
    ("clsoe", "close"),
    ("scheduel", "schedule"),
    ("hrs", "hours"),
    ("onbord", "onboard"),
    ("onbaording", "onboarding"),
    ("tommorow", "tomorrow"),
    ("tomorow", "tomorrow"),
    ("tommorrow", "tomorrow"),
    ("tmrw", "tomorrow"),
    ("shedule", "schedule"),
    ("schedual", "schedule"),
    ("reschedual", "reschedule"),
    ("budjet", "budget"),
    ("buget", "budget"),
    ("reserach", "research"),
    ("reasearch", "research"),
    ("lauch", "launch"),
    ("lanch", "launch"),
    ("deply", "deploy"),
    ("delpoy", "deploy"),
    ("remnd", "remind"),
    ("remid", "remind"),
    ("cancle", "cancel"),
    ("plna", "plan"),
    ("paln", "plan"),
    ("wendesday", "wednesday"),
    ("wensday", "wednesday"),
    ("thrusday", "thursday"),
    ("feburary", "february"),
    ("decmber", "december"),
    ("novmber", "november"),
    ("janurary", "january"),
    ("trp", "trip"),
    ("hte", "the"),
    ("teh", "the"),
    ("mri's", "mris"),
    ("lanuch", "launch"),
    ("lauching", "launching"),
    ("depoly", "deploy"),
    ("deploymnet", "deployment"),
    ("luanch", "launch"),
    ("budegt", "budget"),
    ("budgte", "budget"),
    ("ned", "need"),
    ("reserch", "research"),
    ("researh", "research"),
    ("lsit", "list"),
    ("reshedule", "reschedule"),
    ("rescedule", "reschedule"),
    ("remidn", "remind"),
    ("remnid", "remind"),
    ("chagned", "changed"),
    ("chnaged", "changed"),
    ("hlep", "help"),
    ("ive", "i've"),
    ("im", "i'm"),
    ("cant", "can't"),
    ("dont", "don't"),
    ("wont", "won't"),
    ("didnt", "didn't"),
    ("isnt", "isn't"),
    ("doesnt", "doesn't"),
    ("couldnt", "couldn't"),
    ("untill", "until"),
    ("bc", "because"),
    ("u", "you"),
    ("pls", "please"),
    ("plz", "please"),
    ("thx", "thanks"),
];

pub(crate) struct Input {
    /// The message with typos fixed, original case.
    pub(crate) text: String,
    /// Lowercase, same byte offsets as `text`.
    pub(crate) lower: String,
    pub(crate) today: NaiveDate,
}

/// Lowercases char by char, keeping characters whose lowercase form has a
/// different length, so byte offsets stay shared with the original.
pub(crate) fn lower_same_offsets(text: &str) -> String {
    text.chars()
        .map(|c| {
            let mut l = c.to_lowercase();
            match (l.next(), l.next()) {
                (Some(x), None) if x.len_utf8() == c.len_utf8() => x,
                _ => c,
            }
        })
        .collect()
}

fn fix_typos(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let lower = word.to_lowercase();
        match TYPOS.iter().find(|(bad, _)| *bad == lower) {
            Some((_, good)) => out.push_str(good),
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in message.chars() {
        if c.is_alphanumeric() || c == '\'' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(match c {
                '’' | '‘' => '\'',
                '“' | '”' => '"',
                '–' | '—' => '-',
                other => other,
            });
        }
    }
    flush(&mut word, &mut out);
    day_ranges(two_for_to(out))
}

/// "10-18 October", "Oct 10-18": a range of days written with a dash
/// reads as "10 to 18 October" (a dash inside a word keeps it whole).
fn day_ranges(text: String) -> String {
    // Month names only ("3-5 marketing people" is no range of days).
    const MONTH: &str = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t|tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";
    static DAYS_FIRST: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        super::commands::re(&format!(
            r"(?i)\b(\d{{1,2}}(?:st|nd|rd|th)?) ?- ?(\d{{1,2}}(?:st|nd|rd|th)?)(\s+(?:of\s+)?{MONTH}\b)"
        ))
    });
    static MONTH_FIRST: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        super::commands::re(&format!(
            r"(?i)\b({MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?) ?- ?(\d{{1,2}}(?:st|nd|rd|th)?)\b"
        ))
    });
    if !text.contains('-') {
        return text;
    }
    let text = DAYS_FIRST.replace_all(&text, "$1 to $2$3");
    MONTH_FIRST.replace_all(&text, "$1 to $2").into_owned()
}

/// "trip 2 berlin", "she reports 2 Maria": "2" for "to" after a word that
/// takes one.
fn two_for_to(text: String) -> String {
    static TWO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        super::commands::re(
            r"(?i)\b(trip|trips|reports|report|reporting|going|go|travel|travelling|traveling|flying|heading|move|push) 2 ([a-z])",
        )
    });
    if text.contains(" 2 ") {
        TWO.replace_all(&text, "$1 to $2").into_owned()
    } else {
        text
    }
}

impl Input {
    pub(crate) fn new(message: &str, today: NaiveDate) -> Input {
        let text = fix_typos(message.trim());
        let lower = lower_same_offsets(&text);
        Input { text, lower, today }
    }

    pub(crate) fn tokens(&self) -> Vec<Token<'_>> {
        dates::tokens(&self.lower)
    }

    pub(crate) fn dates(&self) -> Vec<DateMention> {
        dates::find_dates(&self.tokens(), self.today)
    }

    /// The original-case text of tokens `first..last`.
    pub(crate) fn span(&self, toks: &[Token<'_>], first: usize, last: usize) -> String {
        if first >= last || last > toks.len() {
            return String::new();
        }
        self.text[toks[first].start..toks[last - 1].end].to_owned()
    }
}

/// Index of the first token of `phrase` in `toks`, matching whole words.
/// Called for every keyword of every template on each message, so it
/// allocates nothing and compares the rest only where the first word fits.
pub(crate) fn find_phrase(toks: &[Token<'_>], phrase: &str) -> Option<usize> {
    let mut words = phrase.split_whitespace();
    let first = words.next()?;
    (0..toks.len()).find(|&i| {
        toks[i].word == first
            && words
                .clone()
                .enumerate()
                .all(|(k, w)| toks.get(i + 1 + k).is_some_and(|t| t.word == w))
    })
}

/// Words that end a name by saying when, not which.
const WHEN_TAILS: [[&str; 2]; 8] = [
    ["this", "time"],
    ["next", "time"],
    ["for", "now"],
    ["right", "now"],
    ["for", "today"],
    ["this", "week"],
    ["this", "month"],
    ["for", "once"],
];

/// Removes leading articles and possessives and trailing generic nouns:
/// "the laptop step" → "laptop", "my onboarding plan" → "onboarding".
pub(crate) fn strip_reference(words: &str) -> String {
    // The name ends where another clause starts: "the visa check, no visa needed".
    let words = [
        ",",
        ";",
        "?",
        " - ",
        " — ",
        " because ",
        " since ",
        " as we ",
        " as i ",
        " before we ",
        " before i ",
        // "skip the retrospective this time round": when, not which.
        " this time",
        " for now",
        " altogether",
        " really ",
    ]
    .iter()
    .filter_map(|sep| words.find(sep))
    .min()
    .map_or(words, |at| &words[..at]);
    // Quotes and symbols around a name are not part of it ("'intro call'",
    // "the smoke tests ✅").
    let mut parts: Vec<&str> = words
        .split(|c: char| c.is_whitespace() || matches!(c, '?' | '!' | '.' | ',' | ';' | ':' | '"'))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && !matches!(c, '&' | '+' | '#' | '-' | '\'')))
        .map(|w| w.trim_matches(['\'', '‘', '’']))
        .filter(|w| !w.is_empty())
        .collect();
    while parts
        .first()
        .is_some_and(|w| matches!(*w, "the" | "my" | "our" | "this" | "that" | "a" | "an" | "me" | "your"))
        || parts.len() > 1 && matches!(parts.first(), Some(&("step" | "task")))
    {
        parts.remove(0);
    }
    // "the swag order this time", "the venue for today": when, not which.
    for tail in WHEN_TAILS {
        if parts.len() > 2 && parts.ends_with(&tail) {
            parts.truncate(parts.len() - 2);
        }
    }
    while parts.last().is_some_and(|w| {
        matches!(
            *w,
            "plan"
                | "plans"
                | "step"
                | "task"
                | "item"
                | "please"
                | "now"
                | "going"
                | "looking"
                | "first"
                | "completely"
                | "entirely"
                | "anymore"
                | "instead"
                | "again"
                | "asap"
                | "today"
                | "yesterday"
                | "recently"
                | "lately"
        )
    }) {
        parts.pop();
    }
    parts
        .iter()
        .map(|w| w.trim_matches(['\'', '‘', '’', '“', '”']))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn title_case(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "Hi Marco, could you move the kickoff…": a message written to another
/// person (pasted into the wrong window), not to steward.
pub(crate) fn addressed_to_someone_else(text: &str) -> bool {
    static TO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        super::commands::re(r"^\s*(?i:hi|hey|hello|dear|morning|good morning)\s+(\p{Lu}\p{Ll}+)\s*[,!]")
    });
    // "Tomás, remind me to bring the adapter": a request to the person named.
    static NAMED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        super::commands::re(
            r"^\s*(\p{Lu}\p{Ll}+)\s*,\s*(?i:remind me|can you|could you|would you|please|pls|don't forget|do not forget|make sure)\b",
        )
    });
    let greeted = TO.captures(text).is_some_and(|c| {
        !matches!(
            c[1].to_lowercase().as_str(),
            "steward" | "there" | "team" | "all" | "everyone" | "folks" | "guys" | "again"
        )
    });
    greeted
        || NAMED.captures(text).is_some_and(|c| {
            !matches!(
                c[1].to_lowercase().as_str(),
                "steward"
                    | "ok"
                    | "okay"
                    | "hey"
                    | "hi"
                    | "yes"
                    | "yeah"
                    | "so"
                    | "also"
                    | "actually"
                    | "right"
                    | "well"
                    | "sure"
                    | "thanks"
                    | "hmm"
                    | "oh"
                    | "quick"
                    | "team"
                    | "everyone"
                    | "folks"
                    | "guys"
                    | "and"
                    | "but"
                    | "now"
                    | "then"
                    | "tomorrow"
                    | "today"
                    | "tonight"
            )
        })
}

/// An indirect request said directly: "would you mind renaming X to Y" →
/// "rename X to Y", "go ahead and scrap the visit step" → "scrap the visit
/// step", "I'd like to see the launch plan" → "show the launch plan". The
/// rest keeps the person's own words and case. `None` when the message is
/// not one ("go ahead and create it" agrees with a proposal).
pub(crate) fn direct(input: &Input) -> Option<String> {
    static LEAD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        super::commands::re(
            r"^(?:[^,;—]*?(?:,|;|—)\s*(?:so\s+)?)?\s*(?:please\s+)?(?:would you mind|would u mind|do you mind|go ahead and|i need you to|i'd like you to|i would like you to|i'd like to|i would like to)\s+",
        )
    });
    static AGREES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        super::commands::re(r"^(create|make|set up|start|do|save|apply|add|confirm) (it|that|this|them|the plan)\W*$")
    });
    let lead = LEAD.find(&input.lower)?;
    let rest = input.text.get(lead.end()..)?.trim_end_matches(['?', ' ']);
    // Nothing after the lead ("would you mind?"), or agreeing with a
    // proposal: read as it is. Otherwise the result is shorter than the
    // message, so reading it again ends.
    if rest.is_empty() || AGREES.is_match(&lower_same_offsets(rest)) {
        return None;
    }
    let (first, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    let verb = match first.to_lowercase().as_str() {
        "see" | "view" => "show".to_owned(),
        w => GERUNDS
            .iter()
            .find(|(g, _)| *g == w)
            .map_or_else(|| first.to_owned(), |(_, v)| (*v).to_owned()),
    };
    Some(format!("{verb} {tail}").trim().to_owned())
}

/// "would you mind renaming …": the verbs a request starts with.
const GERUNDS: &[(&str, &str)] = &[
    ("renaming", "rename"),
    ("telling", "tell"),
    ("holding", "hold"),
    ("using", "use"),
    ("taking", "take"),
    ("lifting", "lift"),
    ("undoing", "undo"),
    ("redoing", "redo"),
    ("cancelling", "cancel"),
    ("canceling", "cancel"),
    ("moving", "move"),
    ("pushing", "push"),
    ("adding", "add"),
    ("removing", "remove"),
    ("deleting", "delete"),
    ("marking", "mark"),
    ("ticking", "tick"),
    ("showing", "show"),
    ("listing", "list"),
    ("setting", "set"),
    ("switching", "switch"),
    ("skipping", "skip"),
    ("retrying", "retry"),
    ("starting", "start"),
    ("reminding", "remind"),
    ("changing", "change"),
    ("turning", "turn"),
    ("scrapping", "scrap"),
    ("dropping", "drop"),
    ("shifting", "shift"),
    ("bumping", "bump"),
    ("rescheduling", "reschedule"),
    ("sending", "send"),
    ("making", "make"),
    ("putting", "put"),
    ("giving", "give"),
    ("pulling", "pull"),
    ("bringing", "bring"),
    ("checking", "check"),
    ("crossing", "cross"),
];

/// "why do reminders show up late?", "how many plans can I have?", "do
/// you nag me?": a question about how steward works, which no command
/// answers; steward talks (or shows its help), it does not act.
pub(crate) fn asks_how_steward_works(lower: &str) -> bool {
    static HOW: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        super::commands::re(
            r"^(?:(?:hey|hi|so|quick question|question)[,:!]?\s+)?(?:why\b|what happens (?:if|when)\b|what if\b|how (?:many|much|often|long)\b.*\b(?:can|could|may|will|would) (?:i|we|you)\b|(?:do|does) (?:you|steward)\b(?:\s+(?:ever|actually|also|still))?\s+(?:nag|sync|store|keep|support|work|handle|send|talk|integrate|connect|learn|charge|cost|track|save|delete|share|read|need|sell|use|remind people))",
        )
    });
    HOW.is_match(lower.trim())
}
