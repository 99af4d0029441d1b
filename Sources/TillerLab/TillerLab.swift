/// The steering lab: a generated chat language with known truth (lexicon, grammar, corpus) and the
/// exact judges that score answers in it. Pure Swift: no model, no backend.
public enum TillerLab {}
