namespace OrleansMeta.Runtime;

/// <summary>
/// The identity of a grain: its stable type name and a string key. Two references with equal ids address the same
/// virtual actor, wherever and whenever they are used.
/// </summary>
public readonly record struct GrainId
{
    public GrainId(string type, string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(type);
        ArgumentNullException.ThrowIfNull(key);
        Type = type;
        Key = key;
    }

    /// <summary>The grain type name, for example <c>broker</c>.</summary>
    public string Type { get; }

    /// <summary>The grain key within its type, for example <c>7</c>.</summary>
    public string Key { get; }

    /// <summary>Parses the <c>type/key</c> form produced by <see cref="ToString"/>.</summary>
    public static GrainId Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0)
        {
            throw new FormatException($"'{value}' is not a grain id; expected 'type/key'.");
        }

        return new GrainId(value[..slash], value[(slash + 1)..]);
    }

    /// <summary>Parses the <c>type/key</c> form, returning false for anything else (null included).</summary>
    public static bool TryParse(string? value, out GrainId grainId)
    {
        var slash = value?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        grainId = slash > 0 ? new GrainId(value![..slash], value[(slash + 1)..]) : default;
        return slash > 0;
    }

    public override string ToString() => $"{Type}/{Key}";
}
