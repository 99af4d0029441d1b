/// Evaluation on top of the models layer: lab evaluations (generation on a held-out split, scored
/// by the lab's judges) and the demo tour.
public enum TillerEvaluation {}
