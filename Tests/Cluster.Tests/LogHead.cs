using System.Net;
using System.Net.Http.Json;
using OrleansMeta.Contracts;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Checks that nothing was written: the metadata log head is where it was.</summary>
internal static class LogHead
{
    /// <summary>
    /// Reads the metadata log head itself, not the silo image's offset, which can trail a write that was just
    /// acknowledged: the image's offset is the head once asking for one more is refused as beyond the head.
    /// </summary>
    public static async Task<long> ReadAsync(HttpClient http)
    {
        var offset = await OffsetAsync(http, "/v1/metadata");
        while (true)
        {
            using var probe = await http.GetAsync($"/v1/metadata?minOffset={offset + 1}");
            if (probe.StatusCode == HttpStatusCode.BadRequest)
            {
                var text = await probe.Content.ReadAsStringAsync();
                Assert.True(text.Contains(ErrorCodes.OffsetOutOfRange, StringComparison.Ordinal), $"reading the log head: {text}");
                return offset;
            }

            probe.EnsureSuccessStatusCode();
            offset = (await probe.Content.ReadFromJsonAsync<MetadataResponse>())!.MetadataOffset;
        }
    }

    private static async Task<long> OffsetAsync(HttpClient http, string path) =>
        (await http.GetFromJsonAsync<MetadataResponse>(path))!.MetadataOffset;

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
