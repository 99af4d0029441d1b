public enum Tiller {
    public static let version = "0.1.0"
}
