using OrleansMeta.Runtime.Messaging;

namespace OrleansMeta.Runtime.Tests;

/// <summary>What an exception on the owning silo becomes on the calling silo: the same kind, or one that means the same.</summary>
public sealed class RemoteExceptionCodecTests
{
    private static Exception RoundTrip(Exception exception)
    {
        var codec = new RemoteExceptionCodec();
        return codec.Decode(codec.Encode(exception));
    }

    [Fact]
    public void Storage_failures_keep_their_kind_across_silos()
    {
        Assert.IsType<WriteOutcomeUnknownException>(RoundTrip(new WriteOutcomeUnknownException("lost", new TimeoutException())));
        Assert.IsType<SiloFencedException>(RoundTrip(new SiloFencedException("fenced")));
        Assert.IsType<StorageUnavailableException>(RoundTrip(new StorageUnavailableException("down")));
    }

    [Fact]
    public void A_database_error_or_timeout_that_escaped_a_grain_is_a_retryable_storage_failure_on_the_caller()
    {
        foreach (var error in new Exception[] { new Npgsql.NpgsqlException("Exception while reading from stream"), new TimeoutException("timed out") })
        {
            var decoded = Assert.IsType<StorageUnavailableException>(RoundTrip(error));
            Assert.True(decoded.IsRetryable);
            Assert.Contains(error.Message, decoded.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_silo_that_does_not_know_the_name_still_learns_that_a_database_error_is_retryable()
    {
        var encoded = new RemoteExceptionCodec().Encode(new Npgsql.NpgsqlException("gone"));
        Assert.True(encoded.Retryable);
    }
}
