using System.Globalization;
using System.Reflection;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

/// <summary>One versioned schema script embedded in the runtime assembly (<c>Sql/NNN_name.sql</c>).</summary>
public sealed record SchemaScript(int Version, string Name, string Sql)
{
    private const string ResourcePrefix = "OrleansMeta.Runtime.Sql.";

    /// <summary>All embedded scripts in version order. Adding a migration is dropping a new <c>NNN_name.sql</c> file
    /// into <c>Sql/</c>; the project embeds every file there.</summary>
    public static IReadOnlyList<SchemaScript> LoadEmbedded() => Load(typeof(SchemaScript).Assembly);

    internal static IReadOnlyList<SchemaScript> Load(Assembly assembly)
    {
        var scripts = new List<SchemaScript>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(ResourcePrefix, StringComparison.Ordinal) ||
                !resource.EndsWith(".sql", StringComparison.Ordinal))
            {
                continue;
            }

            var name = resource[ResourcePrefix.Length..^".sql".Length];
            var underscore = name.IndexOf('_', StringComparison.Ordinal);
            if (underscore <= 0 ||
                !int.TryParse(name.AsSpan(0, underscore), NumberStyles.None, CultureInfo.InvariantCulture, out var version) ||
                version <= 0)
            {
                // Failing here rather than skipping: a misnamed script silently never applied is a schema bug found in production.
                throw new InvalidOperationException(
                    $"Embedded schema script '{resource}' is not named NNN_description.sql with a positive version number.");
            }

            using var stream = assembly.GetManifestResourceStream(resource)
                ?? throw new InvalidOperationException($"Embedded schema script '{resource}' could not be opened.");
            using var reader = new StreamReader(stream);
            scripts.Add(new SchemaScript(version, name, reader.ReadToEnd()));
        }

        scripts.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 1; i < scripts.Count; i++)
        {
            if (scripts[i].Version == scripts[i - 1].Version)
            {
                throw new InvalidOperationException(
                    $"Schema scripts '{scripts[i - 1].Name}' and '{scripts[i].Name}' share version {scripts[i].Version}.");
            }
        }

        return scripts;
    }
}
