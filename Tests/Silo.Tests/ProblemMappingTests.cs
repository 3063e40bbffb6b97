using OrleansMeta.Contracts;
using OrleansMeta.Runtime;
using OrleansMeta.Silo.Api;

namespace OrleansMeta.Silo.Tests;

/// <summary>How failures that reach the API become answers: nothing a client can cause or retry is a 500.</summary>
public sealed class ProblemMappingTests
{
    [Fact]
    public void A_database_that_cannot_be_reached_by_a_read_is_a_retryable_503_not_a_500()
    {
        // Seen under chaos: a silo cut off from PostgreSQL failed to read the log head for an AlterPartition.
        var (status, code, retryable, detail) = ProblemMapping.Classify(new Npgsql.NpgsqlException("Failed to connect to 127.0.0.1:5432"));

        Assert.Equal((503, ErrorCodes.Unavailable, true), (status, code, retryable));
        Assert.Contains("nothing was done", detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_write_whose_outcome_is_unknown_is_a_retryable_503()
    {
        var (status, _, retryable, _) = ProblemMapping.Classify(new WriteOutcomeUnknownException("lost", new TimeoutException()));

        Assert.Equal((503, true), (status, retryable));
    }
}
