namespace OrleansMeta.Silo.Tests.Infrastructure;

/// <summary>The throwaway PostgreSQL that scripts/test.sh starts for the test run.</summary>
public static class TestPostgres
{
    public const string Variable = "ORLEANS_META_TEST_POSTGRES";

    public static string ConnectionString => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value
        ? value
        : throw new InvalidOperationException($"{Variable} is not set. Run the tests with scripts/test.sh, which starts a throwaway PostgreSQL and sets it.");

    /// <summary>A cluster id no other test uses, so tests sharing the database never see each other's rows.</summary>
    public static string NewClusterId(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(63, prefix.Length + 33)];
}
