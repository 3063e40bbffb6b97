using System.Net;
using OrleansMeta.Contracts;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Checks that nothing was written: the metadata log head is where it was.</summary>
internal static class LogHead
{
    /// <summary>
    /// Asserts the log head is still <paramref name="head"/>: asked for one offset more, the silo reads the log head
    /// and refuses at once (OFFSET_OUT_OF_RANGE) when no record was appended since.
    /// </summary>
    public static async Task AssertUnmovedAsync(HttpClient http, long head)
    {
        using var probe = await http.GetAsync($"/v1/metadata?minOffset={head + 1}");
        var text = await probe.Content.ReadAsStringAsync();
        Assert.True(probe.StatusCode == HttpStatusCode.BadRequest && text.Contains(ErrorCodes.OffsetOutOfRange, StringComparison.Ordinal),
            $"the metadata log moved past {head}: {(int)probe.StatusCode} {text}");
    }
}
