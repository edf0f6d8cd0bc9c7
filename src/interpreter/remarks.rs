//! Remarks about a goal that ask for none: the past, hypotheticals,
//! feelings, news, sarcasm and other people's doings ("the launch last
//! week went well", "kinda nervous about my MRI on Friday", "my manager is
//! organising a trip to Singapore"). `goals::detect` reads a message
//! against these lists before it starts a goal.

/// Words that place a goal in the past: "the launch last week went well".
pub(super) const PAST: &[&str] = &[
    "went",
    "was",
    "were",
    "happened",
    "ago",
    "yesterday",
    "last week",
    "went well",
];

/// Remarks about a goal, not requests for one: a hypothetical, a memory,
/// a feeling, someone else's words ("if we ever launch in Japan", "so
/// excited!", "my manager said '…'"). They stand unless a strong request
/// is made too.
pub(super) const REMARKS: &[&str] = &[
    "if we ever",
    "if i ever",
    "remember when",
    "good times",
    "so excited",
    "fingers crossed",
    "said",
    "thinking out loud",
    "just thinking",
    "don't want",
    "dont want",
    "do not want",
    "don't need",
    "do not need",
    "no need to",
    "imagine",
    "suppose",
    "what if",
    "i guess",
    "what could go wrong",
    "in hindsight",
    "should have",
    "last year",
    "last year's",
    "took us",
    "last job",
    "can't believe",
    "cant believe",
    "got delayed",
    "was delayed",
    "note to self",
    "never",
    "impressive",
    "competitor",
    "competitors",
    "closed the books",
    "if i had to",
    "if we had to",
    "would that even",
    "would it even",
    "i wish",
    "wish someone",
    "crazy times",
    "busy times",
    "lesson learned",
    "next time",
    "everyone knows",
    "terrible idea",
    "bad idea",
    "always make me",
    "always makes me",
    "matters a lot",
    "matter a lot",
    // Feelings about a goal: "kinda nervous about my MRI on Friday",
    // "deploy day tomorrow, wish me luck".
    "nervous",
    "anxious",
    "overwhelmed",
    "stressed",
    "stressing",
    "dreading",
    "wish me luck",
    "going to be chaos",
    "gonna be chaos",
    "always wrecks",
    "always ruins",
    // News and negations: "apparently Samsung is launching …", "we're
    // not deploying anything this week".
    "apparently",
    "i heard",
    "rumour is",
    "rumor is",
    "we're not",
    "we are not",
    "i'm not",
    "i am not",
];

/// Sarcasm and notes that stand against any request in the message:
/// "sure, let's just launch it tomorrow with zero testing, what could go
/// wrong"; looking at a plan that exists ("let me have a look at the
/// Sunfish onboarding").
pub(super) const NEVER_A_GOAL: &[&str] = &[
    "what could go wrong",
    "note to self",
    "imagine if",
    "lol imagine",
    "have a look at",
    "take a look at",
    "look at the",
    "up on screen",
    "absolute favourite",
    "absolute favorite",
    "oh joy",
    "what could possibly go wrong",
    "love that for",
    "such a great idea",
    "such a good idea",
    "yeah because",
];

/// People other than the user: "my colleague is onboarding a new hire
/// next week" is news about their goal.
const OTHERS: &[&str] = &[
    "colleague",
    "colleagues",
    "coworker",
    "co-worker",
    "manager",
    "boss",
    "wife",
    "husband",
    "partner",
    "friend",
    "friends",
    "sister",
    "brother",
    "mom",
    "mum",
    "dad",
    "mother",
    "father",
    "son",
    "daughter",
    "neighbour",
    "neighbor",
    "cousin",
    "flatmate",
    "roommate",
    "housemate",
    "teammate",
];

/// Whether the message is about someone else's doing: "my colleague is
/// …", "my team lead is …".
pub(super) fn about_someone_else(words: &[&str]) -> bool {
    let owner = matches!(words.first(), Some(&("my" | "our" | "a" | "his" | "her" | "their")));
    let person = words.get(1).is_some_and(|w| OTHERS.contains(w)) || words.get(1..3) == Some(&["team", "lead"][..]);
    owner && person
}

/// "my manager is organising a trip …": someone else is doing it, even
/// with a verb that would ask for it.
pub(super) fn others_doing_it(words: &[&str]) -> bool {
    about_someone_else(words)
        && words
            .get(2)
            .is_some_and(|w| matches!(*w, "is" | "was" | "has" | "will" | "wants"))
}

/// "if the client signs this week we'll need to onboard them": a
/// condition, not a request ("if possible, …" and "if you can, …" ask).
pub(super) fn conditional(words: &[&str]) -> bool {
    words.first() == Some(&"if") && !matches!(words.get(1), Some(&("possible" | "you")))
}
