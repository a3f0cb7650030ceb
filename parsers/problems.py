"""The one catalogue of problem codes: severity, Vietnamese message and fix for each code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from parsers.model import Problem, Severity


@dataclass(frozen=True)
class ProblemSpec:
    """One problem code as the unit reads it.

    `message` is the usual text (str.format placeholders such as {name}); `variants` are
    other texts for the same code where the cause differs (a PDF or a scan are both an
    `unsupported-format`, explained differently). Every message says what is wrong and,
    in its last sentence, how to fix it: receipts show the message alone, never the advice
    twice. `fix` is that advice on its own, for lists with no room for the message.
    """

    code: str
    severity: Severity
    message: str
    fix: str
    variants: Mapping[str, str] = field(default_factory=dict)

    def text(self, variant: str | None = None) -> str:
        """The message template for `variant` (None: the usual one)."""
        return self.message if variant is None else self.variants[variant]


_SEND_AGAIN = "Đề nghị mở lại bằng Excel/Word, lưu lại dưới dạng .xlsx/.docx và gửi lại."
_ATTACH_DIRECTLY = "Vui lòng đính kèm trực tiếp các tệp biểu mẫu vào thư."

_SPECS: tuple[ProblemSpec, ...] = (
    # --- the file as a whole (parsers.dispatch, parsers.safety) ---
    ProblemSpec(
        "unreadable-file",
        "error",
        "Tệp {name} không đọc được (có thể bị hỏng hoặc gửi chưa trọn vẹn). Đề nghị mở lại bằng "
        "Excel/Word, lưu lại dưới dạng .xlsx/.docx và gửi lại.",
        (
            "Mở lại tệp bằng Excel hoặc Word, lưu lại (Save As) dưới dạng .xlsx hoặc .docx "
            "rồi gửi lại; không đặt mật khẩu cho tệp."
        ),
        {
            "empty": "Tệp {name} rỗng (không có nội dung). Đề nghị kiểm tra và gửi lại tệp biểu "
            "mẫu đã điền.",
            "bad-zip": "Tệp không đọc được (có thể bị hỏng hoặc gửi chưa trọn vẹn). Đề nghị mở "
            "lại bằng Excel/Word, lưu lại dưới dạng .xlsx/.docx và gửi lại. ({error})",
            "damaged": "Tệp không đọc được (có thể bị hỏng). Đề nghị mở lại bằng Excel/Word, lưu "
            "lại dưới dạng .xlsx/.docx và gửi lại.",
            "strange": "Tệp có cấu trúc bất thường nên hệ thống không đọc ({detail}). Đề nghị mở "
            "tệp bằng Excel/Word, lưu lại dưới dạng .xlsx/.docx và gửi lại.",
        },
    ),
    ProblemSpec(
        "unsupported-format",
        "error",
        "Tệp {name} không phải tệp Word hoặc Excel nên hệ thống không đọc được. Đề nghị gửi "
        "biểu mẫu dưới dạng Word (.docx) hoặc Excel (.xlsx).",
        (
            "Gửi biểu mẫu dưới dạng tệp Excel (.xlsx, .xls) hoặc Word (.docx, .doc); bản quét, "
            "ảnh chụp có chữ ký, đóng dấu chỉ gửi kèm theo tệp đó."
        ),
        {
            "pdf": "Tệp {name} là tệp PDF nên hệ thống không đọc được nội dung biểu mẫu. Đề nghị "
            "gửi tệp Word (.docx) hoặc Excel (.xlsx) đã điền; bản PDF hoặc bản quét có chữ ký, "
            "đóng dấu chỉ gửi kèm theo tệp đó.",
            "image": "Tệp {name} là ảnh chụp/scan nên hệ thống không đọc được nội dung biểu mẫu. "
            "Đề nghị gửi tệp Word (.docx) hoặc Excel (.xlsx) đã điền; ảnh chụp hoặc bản quét "
            "có chữ ký, đóng dấu chỉ gửi kèm theo tệp đó.",
            "web": "Tệp {name} thực chất là trang web (HTML) hoặc XML được đặt tên như tệp "
            "Excel/Word, hệ thống không đọc được. Đề nghị mở tệp bằng Excel/Word, chọn Lưu "
            'thành (Save As) kiểu "Excel Workbook (.xlsx)" hoặc "Word Document (.docx)" rồi '
            "gửi lại.",
            "xlsb": "Tệp {name} được lưu dưới dạng Excel nhị phân (.xlsb) nên hệ thống không đọc "
            "được. Đề nghị mở tệp bằng Excel, chọn Lưu thành (Save As) kiểu "
            '"Excel Workbook (.xlsx)" rồi gửi lại.',
            "no-office": "Hệ thống chưa đọc được tệp định dạng .{ext} của đơn vị. Đề nghị mở tệp "
            "bằng Word/Excel, lưu lại dưới dạng Word (.docx) hoặc Excel (.xlsx) rồi gửi lại.",
        },
    ),
    ProblemSpec(
        "file-too-large",
        "error",
        "Tệp quá lớn hoặc có cấu trúc nén bất thường nên hệ thống không mở ({detail}). "
        "Đề nghị chỉ gửi tệp biểu mẫu đã điền (Excel .xlsx hoặc Word .docx), "
        "không chèn ảnh hay dữ liệu khác, rồi gửi lại.",
        (
            "Xóa bớt nội dung thừa (ảnh, trang tính không dùng) hoặc chỉ gửi tệp biểu mẫu, "
            "rồi gửi lại."
        ),
        {
            "too-slow": "Tệp {name} quá lớn hoặc quá phức tạp nên hệ thống không đọc hết trong "
            "thời gian cho phép. Đề nghị chỉ gửi biểu mẫu đã điền (xóa các trang tính/dữ liệu "
            "khác) rồi gửi lại.",
            # Raised on the mail side, before any parser sees the file.
            "attachment": "Tệp “{name}” có dung lượng {size}, vượt giới hạn {limit} nên không "
            "được đọc. Vui lòng gửi tệp nhỏ hơn (ví dụ bỏ bớt hình ảnh, hoặc lưu lại dưới dạng "
            ".xlsx/.docx).",
            "mail-total": "Tổng dung lượng các tệp trong thư vượt {limit} nên tệp “{name}” không "
            "được đọc. Vui lòng gửi các tệp trong nhiều thư.",
        },
    ),
    ProblemSpec(
        "password-protected",
        "error",
        "Tệp được đặt mật khẩu nên hệ thống không mở được, đề nghị gỡ mật khẩu và gửi lại "
        "(trong Excel/Word: Tệp > Thông tin > Bảo vệ > Mã hóa bằng mật khẩu, xóa mật khẩu rồi "
        "lưu).",
        "Gỡ mật khẩu của tệp (Tệp > Thông tin > Bảo vệ > Mã hóa bằng mật khẩu) rồi gửi lại.",
        {
            "zip": "Tệp được đặt mật khẩu nên hệ thống không mở được, đề nghị gỡ mật khẩu và gửi "
            "lại.",
        },
    ),
    ProblemSpec(
        "legacy-encoding-converted",
        "warning",
        "Một số chữ trong tệp được gõ bằng phông chữ cũ (TCVN3/ABC hoặc VNI) và đã được hệ "
        "thống tự chuyển sang Unicode. Đề nghị kiểm tra lại tên đơn vị, tên tập thể/cá nhân và "
        "tên mô hình; lần sau nên dùng phông Unicode (ví dụ Times New Roman).",
        ("Không cần gửi lại; lần sau đề nghị dùng phông chữ Unicode (ví dụ Times New Roman)."),
    ),
    # --- finding the forms (parsers.finder) ---
    ProblemSpec(
        "no-form-found",
        "error",
        "Không tìm thấy biểu đăng ký (Mẫu số 01 hoặc Mẫu số 02) trong tệp này. Nếu đây là "
        "công văn hoặc tờ trình, đề nghị gửi kèm biểu đăng ký theo mẫu (tệp Excel hoặc "
        "Word) có bảng: TT, Tên tập thể, cá nhân, Tên mô hình theo 4 lĩnh vực, Ghi chú.",
        (
            "Gửi đúng tệp biểu mẫu (Mẫu số 01 hoặc Mẫu số 02), giữ nguyên tiêu đề “BIỂU TỔNG "
            "HỢP” và hàng tiêu đề các cột của bảng."
        ),
    ),
    ProblemSpec(
        "unknown-form-type",
        "error",
        "Không xác định được đây là Mẫu số 01 (cấp Quận) hay Mẫu số 02 (cấp cơ sở): biểu không "
        "có ký hiệu mẫu (M1/M2) và tiêu đề không ghi “CẤP QUẬN” hay “CẤP CƠ SỞ”. Đề nghị dùng "
        "đúng biểu mẫu kèm Công văn và ghi rõ ký hiệu mẫu.",
        "Dùng đúng biểu mẫu kèm Công văn và ghi rõ ký hiệu mẫu (M1 hoặc M2).",
    ),
    ProblemSpec(
        "form-type-conflict",
        "error",
        "Ký hiệu mẫu ghi {marker} nhưng tiêu đề biểu lại ghi {level}. "
        "Đề nghị sửa cho thống nhất (ký hiệu M1 đi với “CẤP QUẬN”, M2 đi với “CẤP CƠ SỞ”) "
        "và gửi lại.",
        "Sửa ký hiệu mẫu hoặc tiêu đề cho thống nhất (M1 với “CẤP QUẬN”, M2 với “CẤP CƠ SỞ”).",
    ),
    ProblemSpec(
        "forms-side-by-side",
        "error",
        "Trang tính có hai biểu đặt cạnh nhau; hệ thống chỉ đọc được biểu bên trái. "
        "Đề nghị để mỗi biểu (Mẫu số 01, Mẫu số 02) ở một trang tính (sheet) riêng "
        "rồi gửi lại.",
        "Để mỗi biểu (Mẫu số 01, Mẫu số 02) ở một trang tính (sheet) riêng.",
    ),
    ProblemSpec(
        "ambiguous-field",
        "error",
        "Mô hình “{text}” được ghi trong ô gộp qua nhiều cột lĩnh vực nên không xác "
        "định được thuộc lĩnh vực nào. Đề nghị bỏ gộp ô và ghi mô hình vào đúng một cột "
        "lĩnh vực.",
        "Bỏ gộp ô và ghi mô hình vào đúng một cột lĩnh vực.",
    ),
    ProblemSpec(
        "unknown-field",
        "error",
        "Không xác định được lĩnh vực của mô hình này. Đề nghị ghi mô hình vào đúng cột "
        "lĩnh vực: kinh tế, văn hóa - xã hội, an ninh - quốc phòng hoặc xây dựng hệ thống "
        "chính trị.",
        "Ghi mô hình vào đúng cột lĩnh vực (kinh tế, văn hóa - xã hội, an ninh - quốc phòng, "
        "xây dựng hệ thống chính trị).",
    ),
    ProblemSpec(
        "blank-template-copy",
        "warning",
        "{place} là bản mẫu {form} còn để trống, nằm cạnh biểu {form} đã điền nên hệ thống bỏ "
        "qua phần này. Nếu đơn vị còn mô hình muốn đăng ký, đề nghị ghi tiếp vào biểu đã điền "
        "rồi gửi lại.",
        "Ghi các mô hình còn lại vào biểu đã điền; bản mẫu để trống có thể xóa.",
    ),
    ProblemSpec(
        "total-ambiguous-split",
        "warning",
        "Ô này ghi {count} dòng đánh số hoặc gạch đầu dòng, hệ thống đọc thành {count} mô hình; "
        "tuy nhiên số liệu dòng TỔNG không khớp dù đọc là {count} mô hình hay là một mô hình. "
        "Đề nghị kiểm tra lại: nếu đây là một mô hình được mô tả nhiều ý, bỏ số thứ tự hoặc gạch "
        "đầu dòng ở các ý; nếu là nhiều mô hình, sửa số liệu dòng TỔNG cho khớp.",
        "Nếu là một mô hình, bỏ số thứ tự hoặc gạch đầu dòng ở các ý mô tả; nếu là nhiều mô hình, "
        "sửa số liệu dòng TỔNG cho khớp.",
        {
            "several": "Ô này ghi {count} dòng đánh số hoặc gạch đầu dòng, hệ thống đọc thành "
            "{count} mô hình; số liệu dòng TỔNG không đủ để biết ô nào là một mô hình được mô tả "
            "nhiều ý, ô nào gồm nhiều mô hình. Đề nghị bỏ số thứ tự hoặc gạch đầu dòng ở các ý "
            "mô tả của một mô hình, hoặc tách mỗi mô hình ra một dòng riêng.",
            "neither": "Ô này ghi {count} dòng đánh số hoặc gạch đầu dòng, hệ thống đọc thành "
            "{count} mô hình; tuy nhiên số liệu dòng TỔNG không khớp dù đọc là {count} mô hình "
            "hay là một mô hình. Đề nghị kiểm tra lại: nếu đây là một mô hình được mô tả nhiều "
            "ý, bỏ số thứ tự hoặc gạch đầu dòng ở các ý; nếu là nhiều mô hình, sửa số liệu dòng "
            "TỔNG cho khớp.",
        },
    ),
    # --- the rules (rules.*) ---
    ProblemSpec(
        "missing-unit-name",
        "error",
        "Biểu chưa ghi tên đơn vị: dòng “TÊN ĐƠN VỊ” ở góc trên bên trái còn để trống hoặc để "
        "nguyên chữ mẫu. Đề nghị ghi rõ tên đơn vị (ví dụ: Đảng ủy phường Khương Trung) và gửi "
        "lại.",
        "Ghi tên đơn vị vào dòng “TÊN ĐƠN VỊ” ở đầu biểu mẫu.",
    ),
    ProblemSpec(
        "wrong-year",
        "error",
        "Tiêu đề biểu ghi năm {found}, nhưng đợt đăng ký hiện nay là năm {expected}. Có thể đơn "
        "vị đã dùng lại biểu của năm trước: đề nghị dùng biểu năm {expected} và kiểm tra lại nội "
        "dung.",
        "Kiểm tra lại năm ghi ở tiêu đề và dòng ngày tháng của biểu mẫu.",
    ),
    ProblemSpec(
        "empty-form",
        "error",
        "{form} chưa có mô hình nào. Đề nghị ghi các mô hình đăng ký vào bảng; nếu đơn vị không "
        "đăng ký mô hình nào ở cấp này, ghi rõ “Không đăng ký” trong bảng rồi gửi lại.",
        (
            "Nếu đơn vị không đăng ký mô hình nào, ghi rõ “Không đăng ký” trong biểu; nếu có,"
            " điền các mô hình vào bảng rồi gửi lại."
        ),
    ),
    ProblemSpec(
        "missing-name",
        "error",
        "Có tên mô hình “{model}” nhưng chưa ghi tên tập thể, cá nhân thực hiện. Đề nghị ghi "
        "rõ tên tập thể hoặc cá nhân vào cột “Tên tập thể, cá nhân” của dòng này.",
        "Ghi tên tập thể hoặc cá nhân vào cột “Tên tập thể, cá nhân” của dòng này.",
    ),
    ProblemSpec(
        "missing-model",
        "error",
        "Đã ghi “{name}” nhưng chưa ghi tên mô hình ở cột lĩnh vực nào. Đề nghị ghi tên mô hình "
        "“Dân vận khéo” vào ô lĩnh vực tương ứng (kinh tế, văn hóa - xã hội, an ninh - quốc phòng "
        "hoặc xây dựng hệ thống chính trị), hoặc xóa dòng này nếu không đăng ký.",
        ("Ghi tên mô hình vào đúng ô lĩnh vực của dòng này, hoặc xóa dòng nếu không đăng ký."),
    ),
    ProblemSpec(
        "total-mismatch",
        "error",
        "Dòng TỔNG ghi {declared} mô hình ở cột “{field}” nhưng biểu liệt kê {counted} mô hình. "
        "Đề nghị kiểm tra lại số liệu dòng TỔNG.",
        "Sửa các số ở dòng “TỔNG” cho khớp với số mô hình đã ghi trong bảng.",
    ),
    # --- the mail around the files (mailbot.mail) ---
    ProblemSpec(
        "archive-too-large",
        "error",
        "Tệp nén “{name}” khi giải nén quá lớn (vượt {limit} hoặc tỉ lệ nén bất thường) nên "
        "không được mở. Vui lòng gửi trực tiếp các tệp biểu mẫu.",
        "Gửi trực tiếp các tệp biểu mẫu, không nén.",
    ),
    ProblemSpec(
        "archive-too-many-files",
        "error",
        "Tệp nén “{name}” chứa quá nhiều tệp (trên {limit}) nên không được mở. Vui lòng chỉ "
        "gửi các tệp biểu mẫu.",
        "Chỉ gửi các tệp biểu mẫu.",
    ),
    ProblemSpec(
        "archive-too-deep",
        "error",
        "Tệp nén “{name}” nằm trong quá nhiều lớp nén nên không được mở. Vui lòng gửi trực "
        "tiếp các tệp biểu mẫu hoặc chỉ nén một lớp.",
        "Gửi trực tiếp các tệp biểu mẫu, hoặc chỉ nén một lớp.",
    ),
    ProblemSpec(
        "archive-encrypted",
        "error",
        "Tệp nén “{name}” có đặt mật khẩu nên không mở được. Vui lòng gửi lại tệp không đặt "
        "mật khẩu, hoặc đính kèm trực tiếp các tệp biểu mẫu.",
        "Gửi lại tệp nén không đặt mật khẩu, hoặc đính kèm trực tiếp các tệp biểu mẫu.",
    ),
    ProblemSpec(
        "archive-unreadable",
        "error",
        "Tệp nén “{name}” bị lỗi, không giải nén được. Vui lòng nén lại hoặc đính kèm trực "
        "tiếp các tệp biểu mẫu.",
        "Nén lại, hoặc đính kèm trực tiếp các tệp biểu mẫu.",
    ),
    ProblemSpec(
        "archive-unsupported",
        "error",
        "Hệ thống chưa mở được tệp nén “{name}”. Vui lòng nén lại dưới dạng .zip hoặc đính "
        "kèm trực tiếp các tệp biểu mẫu.",
        "Nén lại dưới dạng .zip, hoặc đính kèm trực tiếp các tệp biểu mẫu.",
        {
            "rar": "Hệ thống chưa mở được tệp nén .rar “{name}”. Vui lòng nén lại dưới dạng .zip "
            "hoặc đính kèm trực tiếp các tệp biểu mẫu.",
        },
    ),
    ProblemSpec(
        "archive-empty",
        "warning",
        "Tệp nén “{name}” không chứa tệp nào để đọc.",
        "Kiểm tra lại tệp nén và đính kèm các tệp biểu mẫu đã điền.",
    ),
    ProblemSpec(
        "attachment-unreadable",
        "error",
        "Tệp “{name}” trong nội dung thư (mã hóa uuencode) bị lỗi, không đọc được. Vui lòng gửi "
        "lại tệp dưới dạng tệp đính kèm thông thường.",
        "Gửi lại tệp dưới dạng tệp đính kèm thông thường.",
    ),
    ProblemSpec(
        "tnef-unreadable",
        "error",
        "Tệp “{name}” (định dạng riêng của Outlook) không đọc được. Vui lòng gửi lại thư ở định "
        "dạng HTML hoặc văn bản thường (không dùng Rich Text) để các tệp đính kèm đến nguyên "
        "vẹn.",
        "Gửi lại thư ở định dạng HTML hoặc văn bản thường (không dùng Rich Text).",
    ),
    ProblemSpec(
        "forward-too-deep",
        "error",
        "Thư có quá nhiều lớp chuyển tiếp lồng nhau nên các tệp ở lớp sâu nhất không được đọc. "
        + _ATTACH_DIRECTLY,
        _ATTACH_DIRECTLY,
        {
            "nested": "Cấu trúc thư lồng nhau quá sâu nên một số tệp không được đọc. "
            + _ATTACH_DIRECTLY,
        },
    ),
    # --- files beside a form that was read (mailbot.extras): notes, never errors ---
    ProblemSpec(
        "extra-document",
        "warning",
        "Tệp {name} là bản PDF hoặc bản quét, gửi kèm biểu mẫu đã đọc từ tệp {source}. Tệp "
        "được lưu kèm hồ sơ để đối chiếu, không tính là biểu mẫu riêng; nếu tệp này là một "
        "biểu mẫu khác, đề nghị gửi thêm tệp Excel hoặc Word của biểu mẫu đó.",
        "Không cần gửi lại; nếu tệp là biểu mẫu khác, gửi thêm tệp Excel hoặc Word của biểu "
        "mẫu đó.",
        {
            "image": "Ảnh {name} là ảnh chụp, gửi kèm biểu mẫu đã đọc từ tệp {source}. Hệ "
            "thống không đọc nội dung ảnh; ảnh được lưu kèm hồ sơ để đối chiếu. Nếu ảnh là một "
            "biểu mẫu khác, đề nghị gửi thêm tệp Excel hoặc Word của biểu mẫu đó.",
        },
    ),
    ProblemSpec(
        "duplicate-copy",
        "warning",
        "Tệp {name} là một bản khác của {form} trong tệp {source} (cùng các mô hình) nên chỉ "
        "được tính một lần.",
        "Không cần gửi lại; lần sau chỉ cần gửi một tệp cho mỗi biểu mẫu.",
    ),
    ProblemSpec(
        "mail-encrypted",
        "error",
        "Thư (hoặc phần thư) được mã hóa (S/MIME hoặc PGP) nên hệ thống không đọc được các tệp "
        "đính kèm. Vui lòng gửi lại thư không mã hóa (chữ ký số vẫn dùng được).",
        "Gửi lại thư không mã hóa (chữ ký số vẫn dùng được).",
    ),
)

CATALOGUE: Mapping[str, ProblemSpec] = MappingProxyType({s.code: s for s in _SPECS})


def spec(code: str) -> ProblemSpec:
    """The catalogue entry for `code` (KeyError for a code nobody registered)."""
    return CATALOGUE[code]


def problem(
    code: str, location: str | None = None, *, variant: str | None = None, **fmt: object
) -> Problem:
    """The Problem for `code` at `location`, its message filled in with `fmt`."""
    entry = CATALOGUE[code]
    return Problem(entry.severity, code, location, entry.text(variant).format(**fmt))


__all__ = ["CATALOGUE", "ProblemSpec", "problem", "spec"]
